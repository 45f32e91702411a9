/**
 * SecondFactorRepo conformance on SQLite and PostgreSQL: every "use once" decided by one
 * conditional write, so parallel uses of one code or step give exactly one winner.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openAccountStore, type AccountStore } from '../../src/adapters/db/open.ts';
import { KyselySecondFactorRepo } from '../../src/adapters/db/second-factor-repo.ts';
import { skipUnless } from '../support/services.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';

const T0 = 1_700_000_000_000;

function conformance(setUp: () => Promise<string>, tearDown: () => Promise<void>): void {
  let store: AccountStore | undefined;
  let repo: KyselySecondFactorRepo;

  before(async () => {
    store = await openAccountStore(await setUp());
    repo = new KyselySecondFactorRepo(store.db);
  });
  after(async () => {
    await store?.close();
    await tearDown();
  });

  async function newUid(): Promise<string> {
    const uid = `u${randomUUID().slice(0, 12)}`;
    await store!.repo.createUser({ uid, username: uid, name: uid, passwordHash: null }, T0);
    return uid;
  }

  it('keeps a pending secret replaceable until it is enabled, then refuses a new setup', async () => {
    const uid = await newUid();
    assert.equal(await repo.findTotp(uid), null);
    assert.equal(await repo.setPendingTotp(uid, 'sealed-1', T0), true);
    assert.equal(await repo.setPendingTotp(uid, 'sealed-2', T0 + 1), true);
    assert.deepEqual(await repo.findTotp(uid), { sealed: 'sealed-2', enabledAt: null, lastStep: 0 });
    assert.equal(await repo.enableTotp(uid, 'sealed-1', 7, ['h1'], T0 + 2), false, 'an outdated secret does not enable');
    assert.equal(await repo.enableTotp(uid, 'sealed-2', 7, ['h1', 'h2'], T0 + 2), true);
    assert.deepEqual(await repo.findTotp(uid), { sealed: 'sealed-2', enabledAt: T0 + 2, lastStep: 7 });
    assert.equal(await repo.countRecoveryCodes(uid), 2);
    assert.equal(await repo.setPendingTotp(uid, 'sealed-3', T0 + 3), false, 'an enabled secret is never replaced by a setup');
    assert.equal(await repo.enableTotp(uid, 'sealed-2', 8, [], T0 + 4), false, 'enabled once');
    assert.equal((await repo.findTotp(uid))?.sealed, 'sealed-2');
  });

  it('accepts each time step once, only above the last, and only on an enabled factor', async () => {
    const uid = await newUid();
    await repo.setPendingTotp(uid, 's', T0);
    assert.equal(await repo.useTotpStep(uid, 100), false, 'a pending factor proves nothing');
    await repo.enableTotp(uid, 's', 100, [], T0);
    assert.equal(await repo.useTotpStep(uid, 100), false, 'the step that enabled it is used');
    const racing = await Promise.all(Array.from({ length: 8 }, () => repo.useTotpStep(uid, 101)));
    assert.equal(racing.filter(Boolean).length, 1, 'of parallel uses of one step exactly one wins');
    assert.equal(await repo.useTotpStep(uid, 100), false, 'an earlier step is refused');
    assert.equal(await repo.useTotpStep(uid, 103), true);
  });

  it('uses a recovery code once, even in parallel, and replaces them all at once', async () => {
    const uid = await newUid();
    const other = await newUid();
    await repo.setPendingTotp(uid, 's', T0);
    await repo.enableTotp(uid, 's', 1, ['a', 'b', 'c'], T0);
    assert.equal(await repo.useRecoveryCode(other, 'a'), false, 'another account cannot use it');
    const racing = await Promise.all(Array.from({ length: 8 }, () => repo.useRecoveryCode(uid, 'a')));
    assert.equal(racing.filter(Boolean).length, 1);
    assert.equal(await repo.countRecoveryCodes(uid), 2);
    await repo.replaceRecoveryCodes(uid, ['x', 'y']);
    assert.equal(await repo.useRecoveryCode(uid, 'b'), false, 'the old codes died');
    assert.equal(await repo.useRecoveryCode(uid, 'x'), true);
    assert.equal(await repo.removeTotp(uid), true);
    assert.equal(await repo.removeTotp(uid), false);
    assert.equal(await repo.countRecoveryCodes(uid), 0, 'removing TOTP removes the recovery codes');
    assert.equal(await repo.findTotp(uid), null);
  });
}

describe('SecondFactorRepo on SQLite', () => {
  let dir = '';
  conformance(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-mfa-'));
    return `sqlite:${join(dir, 'accounts.db')}`;
  }, async () => rmSync(dir, { recursive: true, force: true }));
});

describe('SecondFactorRepo on PostgreSQL', { skip: await skipUnless('postgres') }, () => {
  let database: TestDatabase | undefined;
  conformance(async () => {
    database = await createTestDatabase();
    return database.url;
  }, async () => database?.drop());
});
