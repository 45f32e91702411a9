/**
 * IdentityRepo conformance: one suite body, run on SQLite and on PostgreSQL.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { openAccountStore, type AccountStore } from '../../src/adapters/db/open.ts';
import { KyselyIdentityRepo } from '../../src/adapters/db/identity-repo.ts';
import { UniqueViolation, type NewUser } from '../../src/ports/accounts.ts';
import { IdentityTaken, type IdentityRepo } from '../../src/ports/identities.ts';
import { skipUnless } from '../support/services.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';

const T0 = 1_700_000_000_000;
const ISSUER = 'https://idp.example.test';

const unique = (label: string): string => `${label}${randomUUID().replaceAll('-', '').slice(0, 12)}`;
const newUser = (fields: Partial<NewUser> = {}): NewUser => {
  const id = unique('u');
  return { uid: id, username: id, name: id, passwordHash: null, ...fields };
};

function identityRepoConformance(backend: { setUp(): Promise<string>; tearDown(): Promise<void> }): void {
  let store: AccountStore | undefined;
  let repo: IdentityRepo;

  before(async () => {
    store = await openAccountStore(await backend.setUp());
    repo = new KyselyIdentityRepo(store.db);
  });
  after(async () => {
    await store?.close();
    await backend.tearDown();
  });

  it('creates an account with its identity and finds it by (issuer, sub) and by id', async () => {
    const subject = unique('sub');
    const account = newUser();
    const { user, identity } = await repo.createWithAccount(account, { id: unique('i'), issuer: ISSUER, subject, uid: account.uid }, T0);
    assert.equal(identity.uid, user.uid);
    const found = await repo.findBySubject(ISSUER, subject);
    assert.deepEqual(found, identity);
    assert.deepEqual(await repo.findById(identity.id), identity);
    assert.equal(await repo.findBySubject('https://other.example.test', subject), null);
    assert.equal(user.createdAt, T0);
  });

  it('concurrent first logins of one (issuer, sub): one account, the loser leaves no user behind', async () => {
    const subject = unique('sub');
    const users = [newUser(), newUser()];
    const results = await Promise.allSettled(users.map((user, i) =>
      repo.createWithAccount(user, { id: unique(`i${i}`), issuer: ISSUER, subject, uid: user.uid }, T0)));
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(won.length, 1);
    assert.equal(lost.length, 1);
    assert.ok(lost[0]?.reason instanceof IdentityTaken, String(lost[0]?.reason));
    const identity = await repo.findBySubject(ISSUER, subject);
    const loser = users.find((u) => u.uid !== identity?.uid);
    assert.ok(identity !== null && loser !== undefined);
    assert.notEqual(await store?.repo.findByUid(identity.uid), null);
    assert.equal(await store?.repo.findByUid(loser.uid), null, 'no ghost user');
  });

  it('link refuses an (issuer, sub) that is taken; a taken email refuses the account and the identity', async () => {
    const subject = unique('sub');
    const owner = await store?.repo.createUser(newUser({ email: `${unique('e')}@example.test` }), T0);
    assert.ok(owner !== undefined);
    await repo.link({ id: unique('i'), issuer: ISSUER, subject, uid: owner.uid }, T0);
    await assert.rejects(repo.link({ id: unique('i'), issuer: ISSUER, subject, uid: owner.uid }, T0), IdentityTaken);

    const other = unique('sub');
    await assert.rejects(
      repo.createWithAccount(newUser({ uid: 'x', email: owner.email }), { id: unique('i'), issuer: ISSUER, subject: other, uid: 'x' }, T0),
      (error: unknown) => error instanceof UniqueViolation && error.field === 'email',
    );
    assert.equal(await repo.findBySubject(ISSUER, other), null);
  });

  it('stores sealed refresh tokens, lists the stalest first, replaces by compare-and-set, deletes once', async () => {
    const account = newUser();
    const { identity } = await repo.createWithAccount(account, { id: unique('i'), issuer: ISSUER, subject: unique('s'), uid: account.uid }, T0);
    const older = { id: unique('rt'), identityId: identity.id, provider: 'corp', sid: 's1', sealed: 'v1.k.a.b', createdAt: 1 };
    const newer = { id: unique('rt'), identityId: identity.id, provider: 'corp', sid: 's2', sealed: 'v1.k.c.d', createdAt: 2 };
    await repo.saveRefreshToken(newer);
    await repo.saveRefreshToken(older);
    const listed = (await repo.listRefreshTokens(1000)).filter((t) => t.identityId === identity.id);
    assert.deepEqual(listed.map((t) => t.id), [older.id, newer.id]);
    assert.deepEqual(listed[0], { ...older, refreshedAt: 1 });

    assert.equal(await repo.replaceRefreshToken(older.id, 'v1.k.stale.x', 'v1.k.e.f', 5), false);
    assert.equal(await repo.replaceRefreshToken(older.id, older.sealed, 'v1.k.e.f', 5), true);
    assert.deepEqual(await repo.findRefreshToken(older.id), { ...older, sealed: 'v1.k.e.f', refreshedAt: 5 });

    const deletions = await Promise.all([repo.deleteRefreshToken(older.id), repo.deleteRefreshToken(older.id)]);
    assert.deepEqual(deletions.sort(), [false, true]);
    assert.equal(await repo.findRefreshToken(older.id), null);
  });

  it('deleting the account deletes its identities and their tokens', async () => {
    const account = newUser();
    const { user, identity } = await repo.createWithAccount(account, { id: unique('i'), issuer: ISSUER, subject: unique('s'), uid: account.uid }, T0);
    await repo.saveRefreshToken({ id: unique('rt'), identityId: identity.id, provider: 'corp', sid: 's3', sealed: 's', createdAt: 1 });
    await sql`delete from users where uid = ${user.uid}`.execute(store?.db ?? assert.fail());
    assert.equal(await repo.findById(identity.id), null);
    assert.equal((await repo.listRefreshTokens(10_000)).some((t) => t.identityId === identity.id), false);
  });
}

describe('IdentityRepo on SQLite', () => {
  let dir = '';
  identityRepoConformance({
    async setUp() {
      dir = mkdtempSync(join(tmpdir(), 'latchkey-identities-'));
      return `sqlite:${join(dir, 'accounts.db')}`;
    },
    async tearDown() {
      rmSync(dir, { recursive: true, force: true });
    },
  });
});

describe('IdentityRepo on PostgreSQL', { skip: await skipUnless('postgres') }, () => {
  let database: TestDatabase | undefined;
  identityRepoConformance({
    async setUp() {
      database = await createTestDatabase();
      return database.url;
    },
    async tearDown() {
      await database?.drop();
    },
  });
});
