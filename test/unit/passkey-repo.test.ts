/**
 * The passkeys table (src/adapters/db/passkey-repo.ts) on SQLite and PostgreSQL: a credential id is
 * stored once, an account touches only its own passkeys, and the signature counter only rises, by
 * one conditional write, also under parallel logins; the `passkeys` config section's defaults.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openAccountStore, type AccountStore } from '../../src/adapters/db/open.ts';
import { KyselyPasskeyRepo } from '../../src/adapters/db/passkey-repo.ts';
import { parseConfig } from '../../src/config/config.ts';
import { passkeyOrigins } from '../../src/config/passkeys.ts';
import type { Passkey } from '../../src/ports/passkeys.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { skipUnless } from '../support/services.ts';

const now = 1_700_000_000_000;
const MAX = 20;

function passkey(uid: string, counter = 0): Passkey {
  return { id: randomUUID().replaceAll('-', ''), uid, publicKey: 'pQECAyYgASFY', counter, transports: ['internal', 'hybrid'], name: 'Phone', createdAt: now, lastUsedAt: null };
}

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`passkey repo on ${dialect}`, { skip: dialect === 'postgres' ? await skipUnless('postgres') : false }, () => {
    let store: AccountStore;
    let repo: KyselyPasskeyRepo;
    let dir: string | undefined;
    let database: TestDatabase | undefined;
    const user = async (): Promise<string> => {
      const uid = randomUUID();
      await store.repo.createUser({ uid, username: `u${uid.slice(0, 8)}`, name: 'x', passwordHash: null }, now);
      return uid;
    };
    before(async () => {
      if (dialect === 'sqlite') {
        dir = mkdtempSync(join(tmpdir(), 'latchkey-passkeys-'));
        store = await openAccountStore(`sqlite:${join(dir, 'accounts.db')}`);
      } else {
        database = await createTestDatabase();
        store = await openAccountStore(database.url);
      }
      repo = new KyselyPasskeyRepo(store.db);
    });
    after(async () => {
      await store?.close();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
      await database?.drop();
    });

    it('stores a credential id once, across accounts; reads it back whole', async () => {
      const [a, b] = [await user(), await user()];
      const key = passkey(a, 7);
      assert.equal(await repo.add(key, MAX), 'added');
      assert.equal(await repo.add({ ...passkey(b), id: key.id }, MAX), 'taken', 'the same credential id for another account');
      const used = { ...passkey(a, 2 ** 40), lastUsedAt: now + 5 };
      assert.equal(await repo.add(used, MAX), 'added');
      assert.deepEqual(await repo.find(used.id), used, 'a counter past 32 bits and a last use survive the round trip');
      assert.deepEqual(await repo.find(key.id), key);
      assert.equal(await repo.count(a), 2);
      assert.equal(await repo.count(b), 0);
    });

    it('renames and removes only the account\'s own passkeys; removeAll counts them', async () => {
      const [a, b] = [await user(), await user()];
      const key = passkey(a);
      await repo.add(key, MAX);
      await repo.add(passkey(a), MAX);
      assert.equal(await repo.rename(b, key.id, 'pwned'), false);
      assert.equal(await repo.remove(b, key.id), false);
      assert.equal(await repo.rename(a, key.id, 'Laptop'), true);
      assert.equal((await repo.find(key.id))?.name, 'Laptop');
      assert.equal(await repo.remove(a, key.id), true);
      assert.equal(await repo.find(key.id), null);
      assert.equal(await repo.removeAll(a), 1);
      assert.deepEqual(await repo.list(a), []);
    });

    it('the counter only rises; a counter-less authenticator (0) keeps working; parallel logins with one value count once', async () => {
      const uid = await user();
      const key = passkey(uid, 5);
      await repo.add(key, MAX);
      assert.equal(await repo.use(key.id, 5, now), false, 'the same counter again (a replay or a clone)');
      assert.equal(await repo.use(key.id, 4, now), false, 'a lower one');
      assert.equal(await repo.use(key.id, 0, now), false, 'a counter of 0 after a real one');
      assert.equal(await repo.use(key.id, 6, now + 1), true);
      const results = await Promise.all([7, 7, 7, 7, 9, 8].map((c) => repo.use(key.id, c, now + 2)));
      assert.equal((await repo.find(key.id))?.counter, 9, 'never lowered by a racing smaller value');
      assert.ok(results.filter(Boolean).length <= 3 && results[4] === true, `${results}`);
      assert.equal(results.slice(0, 4).filter(Boolean).length <= 1, true, 'one value counts at most once');

      const zero = passkey(uid, 0);
      await repo.add(zero, MAX);
      assert.deepEqual(await Promise.all([repo.use(zero.id, 0, now), repo.use(zero.id, 0, now)]), [true, true]);
      assert.equal((await repo.find(zero.id))?.lastUsedAt, now);
      assert.equal(await repo.use('gone', 10, now), false);
    });

    it('an account full at max takes no more; its credential ids still answer taken', async () => {
      const [a, b] = [await user(), await user()];
      const keys = Array.from({ length: 3 }, () => passkey(a));
      for (const key of keys) assert.equal(await repo.add(key, 3), 'added');
      assert.equal(await repo.add(passkey(a), 3), 'full');
      assert.equal(await repo.add({ ...passkey(a), id: keys[0]!.id }, 3), 'taken', 'a duplicate is told as one, even when full');
      assert.equal(await repo.add(passkey(b), 3), 'added', 'another account counts its own');
      assert.equal(await repo.remove(a, keys[0]!.id), true);
      assert.equal(await repo.add(passkey(a), 3), 'added', 'room again after a removal');
      assert.equal(await repo.count(a), 3);
    });

    it('of 60 registrations at once on one account, exactly max land', async () => {
      const uid = await user();
      await repo.add(passkey(uid), MAX);
      const outcomes = await Promise.all(Array.from({ length: 60 }, () => repo.add(passkey(uid), MAX)));
      assert.deepEqual([outcomes.filter((o) => o === 'added').length, outcomes.filter((o) => o === 'full').length], [MAX - 1, 60 - MAX + 1]);
      assert.equal(await repo.count(uid), MAX);
    });
  });
}

describe('passkeys config', () => {
  it('defaults to localhost on the listening port without public_url, and to public_url\'s host with it', () => {
    const local = parseConfig({}).passkeys;
    assert.deepEqual([local.rpId, local.rpName, local.origins], ['localhost', 'latchkey', null]);
    assert.deepEqual(passkeyOrigins(local, 8123), ['http://localhost:8123']);
    const public_ = parseConfig({ public_url: 'https://login.example.com' }).passkeys;
    assert.deepEqual([public_.rpId, public_.origins], ['login.example.com', ['https://login.example.com']]);
    const parent = parseConfig({ public_url: 'https://login.example.com', passkeys: { rp_id: 'example.com' } }).passkeys;
    assert.deepEqual([parent.rpId, parent.origins], ['example.com', ['https://login.example.com']]);
    const ip = parseConfig({ public_url: 'http://10.0.0.5:8080' }).passkeys;
    assert.deepEqual([ip.rpId, ip.origins], ['localhost', null], 'an IP address is no rp id: the local default');
  });

  it('refuses an IP rp id and an origin outside the rp id', () => {
    assert.throws(() => parseConfig({ passkeys: { rp_id: '127.0.0.1' } }), /passkeys\.rp_id/);
    assert.throws(() => parseConfig({ passkeys: { rp_id: 'example.com', origins: ['https://evil.com'] } }), /passkeys\.origins/);
    assert.throws(() => parseConfig({ passkeys: { rp_id: 'example.com', origins: ['https://notexample.com'] } }), /passkeys\.origins/);
    assert.throws(() => parseConfig({ passkeys: { origins: [] } }), /passkeys\.origins/);
    assert.throws(() => parseConfig({ passkeys: { origins: ['https://localhost/path'] } }), /passkeys\.origins/);
  });
});
