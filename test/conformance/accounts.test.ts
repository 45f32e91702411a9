/**
 * AccountRepo conformance: one suite body, run against every account database latchkey supports.
 * Tests share one store per backend, so each test makes its own users (unique names) and never
 * assumes an empty table.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { migrate, openAccountStore, type AccountStore } from '../../src/adapters/db/open.ts';
import { UniqueViolation, type AccountRepo, type NewUser, type UniqueField } from '../../src/ports/accounts.ts';
import { StoreUnavailableError } from '../../src/ports/errors.ts';
import { POSTGRES_URL, skipUnless } from '../support/services.ts';
import { asAdmin, createTestDatabase, type TestDatabase } from '../support/postgres.ts';

interface Backend {
  /** Creates an empty database and returns its URL. */
  setUp(): Promise<string>;
  tearDown(): Promise<void>;
}

const T0 = 1_700_000_000_000;

let counter = 0;
/** A name no other test (or earlier run against the same database) uses. */
function unique(label: string): string {
  counter += 1;
  return `${label}${counter}x${randomUUID().slice(0, 8)}`;
}

function newUser(fields: Partial<NewUser> = {}): NewUser {
  const id = unique('u');
  return { uid: id, username: id, name: `Name ${id}`, passwordHash: null, ...fields };
}

async function assertUniqueViolation(work: Promise<unknown>, field: UniqueField): Promise<void> {
  await assert.rejects(work, (error: unknown) => error instanceof UniqueViolation && error.field === field);
}

function accountRepoConformance(backend: Backend): void {
  let url = '';
  let store: AccountStore | undefined;
  let repo: AccountRepo;

  before(async () => {
    url = await backend.setUp();
    store = await openAccountStore(url);
    repo = store.repo;
  });
  after(async () => {
    await store?.close();
    await backend.tearDown();
  });

  it('creates a user with defaults and finds it by uid, username, email and phone', async () => {
    const name = unique('Alice');
    const created = await repo.createUser(
      newUser({ username: name, email: `${name}@Example.com`, zone: '0086', phone: unique('138'), passwordHash: 'h' }),
      T0,
    );
    assert.equal(created.role, 'user');
    assert.equal(created.status, 'active');
    assert.equal(created.createdAt, T0);
    assert.equal(created.updatedAt, T0);
    assert.deepEqual(await repo.findByUid(created.uid), created);
    assert.deepEqual(await repo.findByUsername(name.toUpperCase()), created);
    assert.deepEqual(await repo.findByUsername(name.toLowerCase()), created);
    assert.deepEqual(await repo.findByEmail(`${name}@example.COM`.toLowerCase()), created);
    assert.deepEqual(await repo.findByEmail(`${name}@EXAMPLE.COM`.toUpperCase()), created);
    assert.deepEqual(await repo.findByPhone('0086', created.phone ?? ''), created);
  });

  it('returns null for users that do not exist', async () => {
    assert.equal(await repo.findByUid(unique('nobody')), null);
    assert.equal(await repo.findByUsername(unique('nobody')), null);
    assert.equal(await repo.findByEmail(`${unique('nobody')}@example.com`), null);
    assert.equal(await repo.findByPhone('0086', unique('000')), null);
  });

  it('keeps role and the stored timestamps as given', async () => {
    const admin = await repo.createUser(newUser({ role: 'admin' }), T0 + 5);
    assert.deepEqual(await repo.findByUid(admin.uid), { ...admin, role: 'admin', createdAt: T0 + 5 });
  });

  it('rejects a username taken in another case with UniqueViolation(username)', async () => {
    const name = unique('Alice');
    await repo.createUser(newUser({ username: name }), T0);
    await assertUniqueViolation(repo.createUser(newUser({ username: name.toLowerCase() }), T0), 'username');
    await assertUniqueViolation(repo.createUser(newUser({ username: name.toUpperCase() }), T0), 'username');
  });

  it('rejects an email taken in another case with UniqueViolation(email)', async () => {
    const email = `${unique('Bob')}@Example.com`;
    await repo.createUser(newUser({ email }), T0);
    await assertUniqueViolation(repo.createUser(newUser({ email: email.toLowerCase() }), T0), 'email');
  });

  it('rejects a taken zone and phone with UniqueViolation(phone), but not the same phone in another zone', async () => {
    const phone = unique('139');
    await repo.createUser(newUser({ zone: '0086', phone }), T0);
    await assertUniqueViolation(repo.createUser(newUser({ zone: '0086', phone }), T0), 'phone');
    await repo.createUser(newUser({ zone: '0001', phone }), T0);
  });

  it('lets any number of users have no email and no phone', async () => {
    await repo.createUser(newUser({ email: null, zone: null, phone: null }), T0);
    await repo.createUser(newUser({ email: null, zone: null, phone: null }), T0);
  });

  it('lets exactly one of 20 concurrent sign-ups with the same username succeed', async () => {
    const name = unique('Race');
    const attempts = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        repo.createUser(newUser({ username: i % 2 === 0 ? name : name.toUpperCase() }), T0)),
    );
    const won = attempts.filter((a) => a.status === 'fulfilled');
    const lost = attempts.filter((a) => a.status === 'rejected');
    assert.equal(won.length, 1);
    assert.equal(lost.length, 19);
    for (const attempt of lost) {
      assert.ok(attempt.reason instanceof UniqueViolation && attempt.reason.field === 'username', String(attempt.reason));
    }
  });

  it('replaces a password hash only while it is still the expected one', async () => {
    const user = await repo.createUser(newUser({ passwordHash: null }), T0);
    assert.equal(await repo.updatePasswordHash(user.uid, 'stale', 'h1', T0 + 1), false);
    assert.equal(await repo.updatePasswordHash(user.uid, null, 'h1', T0 + 1), true);
    assert.equal(await repo.updatePasswordHash(user.uid, null, 'h2', T0 + 2), false);
    assert.equal(await repo.updatePasswordHash(user.uid, 'h1', 'h2', T0 + 3), true);
    const stored = await repo.findByUid(user.uid);
    assert.equal(stored?.passwordHash, 'h2');
    assert.equal(stored?.updatedAt, T0 + 3);
    assert.equal(await repo.updatePasswordHash(unique('nobody'), null, 'h', T0), false);
  });

  it('sets status and role, and reports whether the user exists', async () => {
    const user = await repo.createUser(newUser(), T0);
    assert.equal(await repo.setStatus(user.uid, 'banned', T0 + 1), true);
    assert.equal(await repo.setRole(user.uid, 'admin', T0 + 2), true);
    const stored = await repo.findByUid(user.uid);
    assert.equal(stored?.status, 'banned');
    assert.equal(stored?.role, 'admin');
    assert.equal(stored?.updatedAt, T0 + 2);
    assert.equal(await repo.setStatus(unique('nobody'), 'banned', T0), false);
    assert.equal(await repo.setRole(unique('nobody'), 'admin', T0), false);
  });

  it('lists users matching username, name, email or phone case-insensitively, with paging and total', async () => {
    const tag = unique('Tag').toLowerCase();
    const byUsername = await repo.createUser(newUser({ username: `${tag.toUpperCase()}-u` }), T0 + 1);
    const byName = await repo.createUser(newUser({ name: `Mr ${tag.toUpperCase()}` }), T0 + 2);
    const byEmail = await repo.createUser(newUser({ email: `${tag}@EXAMPLE.com` }), T0 + 3);
    const byPhone = await repo.createUser(newUser({ zone: '0086', phone: `555${tag}` }), T0 + 4);
    await repo.createUser(newUser(), T0 + 5);

    const all = await repo.listUsers({ query: tag, offset: 0, limit: 10 });
    assert.equal(all.total, 4);
    assert.deepEqual(all.users.map((u) => u.uid), [byUsername, byName, byEmail, byPhone].map((u) => u.uid));
    const page = await repo.listUsers({ query: tag.toUpperCase(), offset: 1, limit: 2 });
    assert.equal(page.total, 4);
    assert.deepEqual(page.users.map((u) => u.uid), [byName.uid, byEmail.uid]);
    assert.deepEqual((await repo.listUsers({ query: tag, offset: 4, limit: 2 })).users, []);
  });

  it('treats % and _ in a search as literal characters', async () => {
    const tag = unique('lit');
    await repo.createUser(newUser({ name: `${tag}ab` }), T0);
    assert.equal((await repo.listUsers({ query: `${tag}_b`, offset: 0, limit: 10 })).total, 0);
    assert.equal((await repo.listUsers({ query: `${tag}%`, offset: 0, limit: 10 })).total, 0);
    const literal = await repo.createUser(newUser({ name: `${tag}%_b` }), T0);
    const found = await repo.listUsers({ query: `${tag}%_`, offset: 0, limit: 10 });
    assert.deepEqual(found.users.map((u) => u.uid), [literal.uid]);
  });

  it('lists everyone without a query', async () => {
    const before = await repo.listUsers({ offset: 0, limit: 1 });
    await repo.createUser(newUser(), T0);
    const after = await repo.listUsers({ offset: 0, limit: 1 });
    assert.equal(after.total, before.total + 1);
    assert.equal(after.users.length, 1);
  });

  it('upserts, lists (most recent first) and deletes devices per user', async () => {
    const user = await repo.createUser(newUser(), T0);
    const other = await repo.createUser(newUser(), T0);
    assert.equal(await repo.upsertDevice({ uid: user.uid, deviceId: 'd1', name: 'Phone', model: 'X1', lastLoginAt: T0 }), true);
    assert.equal(await repo.upsertDevice({ uid: user.uid, deviceId: 'd2', name: 'Laptop', model: 'L', lastLoginAt: T0 + 1 }), true);
    assert.equal(await repo.upsertDevice({ uid: other.uid, deviceId: 'd1', name: 'Other', model: 'O', lastLoginAt: T0 }), true);
    assert.equal(await repo.upsertDevice({ uid: user.uid, deviceId: 'd1', name: 'Phone 2', model: 'X2', lastLoginAt: T0 + 2 }), false);

    assert.deepEqual(await repo.listDevices(user.uid), [
      { uid: user.uid, deviceId: 'd1', name: 'Phone 2', model: 'X2', lastLoginAt: T0 + 2 },
      { uid: user.uid, deviceId: 'd2', name: 'Laptop', model: 'L', lastLoginAt: T0 + 1 },
    ]);
    assert.equal(await repo.deleteDevice(user.uid, 'd1'), true);
    assert.equal(await repo.deleteDevice(user.uid, 'd1'), false);
    const twice = await Promise.all([1, 2].map((n) => repo.upsertDevice({ uid: user.uid, deviceId: 'd3', name: 'Tab', model: 'T', lastLoginAt: T0 + n })));
    assert.deepEqual(twice.sort(), [false, true], 'of two first logins of one device, exactly one is new');
    assert.equal(await repo.deleteDevice(user.uid, 'd3'), true);
    assert.deepEqual((await repo.listDevices(user.uid)).map((d) => d.deviceId), ['d2']);
    assert.deepEqual((await repo.listDevices(other.uid)).map((d) => d.name), ['Other']);
    assert.deepEqual(await repo.listDevices(unique('nobody')), []);
  });

  it('stores addresses unverified unless told; releases only an unverified claim; marks only a held address', async () => {
    const claimed = unique('claim');
    const proven = unique('proven');
    const claimant = await repo.createUser(newUser({ email: `${claimed}@Example.com`, zone: '86', phone: unique('139') }), T0);
    assert.equal(claimant.emailVerified, false);
    assert.equal(claimant.phoneVerified, false);
    const fullwidth = [...claimant.username.toUpperCase()].map((c) => String.fromCodePoint((c.codePointAt(0) ?? 0) + 0xfee0)).join('');
    assert.equal((await repo.findByUsername(fullwidth))?.uid, claimant.uid, 'usernames are looked up NFKC + case-folded');
    const owner = await repo.createUser(newUser({ email: `${proven}@example.com`, emailVerified: true }), T0);
    assert.equal((await repo.findByUid(owner.uid))?.emailVerified, true);

    assert.equal(await repo.releaseUnverified({ channel: 'email', email: `${proven}@example.com` }, T0 + 1), null, 'a proven address stays');
    assert.equal(await repo.releaseUnverified({ channel: 'email', email: `${claimed}@example.com` }, T0 + 1), claimant.uid);
    const released = await repo.findByUid(claimant.uid);
    assert.equal(released?.email, null);
    assert.equal(released?.phone, claimant.phone, 'only the released address goes');
    assert.equal(await repo.releaseUnverified({ channel: 'sms', zone: '86', phone: claimant.phone ?? '' }, T0 + 2), claimant.uid);
    assert.equal((await repo.findByUid(claimant.uid))?.phone, null);

    const later = await repo.createUser(newUser({ email: `${claimed}@example.com` }), T0);
    assert.equal(await repo.markVerified(claimant.uid, { channel: 'email', email: `${claimed}@example.com` }, T0 + 3), false, 'not held any more');
    assert.equal(await repo.markVerified(later.uid, { channel: 'email', email: `${claimed}@EXAMPLE.com` }, T0 + 3), true);
    assert.equal((await repo.findByUid(later.uid))?.emailVerified, true);
  });

  it('finds device owners to prune (too many rows, or one too old) and deletes only rows not touched since', async () => {
    const many = await repo.createUser(newUser(), T0);
    const old = await repo.createUser(newUser(), T0);
    const few = await repo.createUser(newUser(), T0);
    for (let i = 0; i < 4; i++) await repo.upsertDevice({ uid: many.uid, deviceId: `d${i}`, name: 'n', model: 'm', lastLoginAt: T0 + i });
    await repo.upsertDevice({ uid: old.uid, deviceId: 'old', name: 'n', model: 'm', lastLoginAt: T0 - 100 });
    await repo.upsertDevice({ uid: few.uid, deviceId: 'new', name: 'n', model: 'm', lastLoginAt: T0 + 5 });
    const owners = new Set<string>();
    let after = '';
    for (;;) {
      const page = await repo.listDeviceOwnersToPrune(T0 - 50, 3, after, 1);
      page.forEach((uid) => owners.add(uid));
      if (page.length < 1) break;
      after = page[0] ?? '';
    }
    assert.ok(owners.has(many.uid) && owners.has(old.uid) && !owners.has(few.uid), JSON.stringify([...owners]));
    assert.equal(await repo.deleteDevices(many.uid, ['d0', 'd3'], T0 + 2), 1, 'd3 logged in after the cut-off: kept');
    assert.deepEqual((await repo.listDevices(many.uid)).map((d) => d.deviceId), ['d3', 'd2', 'd1']);
    assert.equal(await repo.deleteDevices(many.uid, [], T0 + 10), 0);
  });

  it('appends audit events and queries them newest first, filtered and paged by id', async () => {
    const uid = unique('audited');
    const type = unique('login.');
    const base = { sid: null, ip: '10.0.0.1', userAgent: 'ua', reason: null } as const;
    await repo.appendAudit({ ...base, type, uid, result: 'ok', at: T0 + 1 });
    await repo.appendAudit({ ...base, type, uid, result: 'fail', reason: 'bad_password', at: T0 + 2 });
    await repo.appendAudit({ ...base, type: `${type}.other`, uid, sid: 'sid-1', result: 'ok', at: T0 + 3 });
    await repo.appendAudit({ ...base, type, uid: null, ip: null, userAgent: null, result: 'fail', at: T0 + 4 });

    const mine = await repo.queryAudit({ uid, limit: 10 });
    assert.deepEqual(mine.map((e) => e.at), [T0 + 3, T0 + 2, T0 + 1]);
    assert.ok(mine.every((e, i) => i === 0 || (mine[i - 1]?.id ?? 0) > e.id), 'ids descend');
    assert.deepEqual(mine[0], { ...base, id: mine[0]?.id, type: `${type}.other`, uid, sid: 'sid-1', result: 'ok', at: T0 + 3 });
    assert.equal(mine[1]?.reason, 'bad_password');

    const ofType = await repo.queryAudit({ type, limit: 10 });
    assert.deepEqual(ofType.map((e) => e.at), [T0 + 4, T0 + 2, T0 + 1]);
    assert.deepEqual(ofType[0], { id: ofType[0]?.id, type, uid: null, sid: null, ip: null, userAgent: null, result: 'fail', reason: null, at: T0 + 4 });
    assert.deepEqual((await repo.queryAudit({ uid, type, limit: 10 })).map((e) => e.at), [T0 + 2, T0 + 1]);
    assert.deepEqual((await repo.queryAudit({ uid, since: T0 + 2, limit: 10 })).map((e) => e.at), [T0 + 3, T0 + 2]);

    const first = await repo.queryAudit({ uid, limit: 2 });
    assert.deepEqual(first.map((e) => e.at), [T0 + 3, T0 + 2]);
    const next = await repo.queryAudit({ uid, beforeId: first[1]?.id, limit: 2 });
    assert.deepEqual(next.map((e) => e.at), [T0 + 1]);
  });

  it('prunes audit events older than the cutoff and says how many', async () => {
    const uid = unique('pruned');
    const event = { type: 'prune.test', uid, sid: null, ip: null, userAgent: null, result: 'ok', reason: null } as const;
    // Far in the past, so no other test's events are older.
    await repo.appendAudit({ ...event, at: 1000 });
    await repo.appendAudit({ ...event, at: 2000 });
    await repo.appendAudit({ ...event, at: 3000 });
    assert.equal(await repo.pruneAudit(2500), 2);
    assert.deepEqual((await repo.queryAudit({ uid, limit: 10 })).map((e) => e.at), [3000]);
    assert.equal(await repo.pruneAudit(2500), 0);
  });

  it('answers ping', async () => {
    assert.equal(await repo.ping(), true);
  });

  it('opens an already migrated database again without re-running migrations', async () => {
    const user = await repo.createUser(newUser(), T0);
    assert.deepEqual(await migrate(url), []);
    const again = await openAccountStore(url);
    try {
      assert.deepEqual(await again.repo.findByUid(user.uid), user);
    } finally {
      await again.close();
    }
  });
}

describe('AccountRepo on SQLite', () => {
  let dir = '';
  accountRepoConformance({
    async setUp() {
      dir = mkdtempSync(join(tmpdir(), 'latchkey-accounts-'));
      return `sqlite:${join(dir, 'nested', 'accounts.db')}`;
    },
    async tearDown() {
      rmSync(dir, { recursive: true, force: true });
    },
  });
});

describe('AccountRepo on PostgreSQL', { skip: await skipUnless('postgres') }, () => {
  let database: TestDatabase | undefined;
  accountRepoConformance({
    async setUp() {
      database = await createTestDatabase();
      return database.url;
    },
    async tearDown() {
      await database?.drop();
    },
  });

  it('survives the server dropping its idle connections, and reconnects', async () => {
    const dropped: Error[] = [];
    assert.ok(database !== undefined);
    const store = await openAccountStore(database.url, { onConnectionError: (e) => dropped.push(e) });
    try {
      assert.equal(await store.repo.ping(), true);
      await asAdmin((c) => c.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [database?.name],
      ));
      // The pool learns of the dead clients when their sockets close; on a loaded machine that can
      // take longer than any fixed pause, so wait for the report itself.
      for (const deadline = performance.now() + 30_000; dropped.length === 0 && performance.now() < deadline;) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.ok(dropped.length > 0, 'the pool reported the dropped connection');
      assert.equal(await store.repo.ping(), true);
    } finally {
      await store.close();
    }
  });
});

describe('openAccountStore', () => {
  it('opens an in-memory SQLite database', async () => {
    const store = await openAccountStore('sqlite::memory:');
    try {
      const user = await store.repo.createUser(newUser(), T0);
      assert.deepEqual(await store.repo.findByUid(user.uid), user);
    } finally {
      await store.close();
    }
  });

  it('reports an unreachable PostgreSQL as StoreUnavailableError', async () => {
    await assert.rejects(openAccountStore('postgres://postgres@127.0.0.1:1/none'), StoreUnavailableError);
  });

  it('rejects an unknown URL scheme without echoing the rest of the URL', async () => {
    await assert.rejects(openAccountStore('mysql://root:secret@db/x'), (error: unknown) =>
      error instanceof Error && error.message.includes('mysql') && !error.message.includes('secret'));
  });
});
