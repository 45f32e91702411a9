/**
 * Sessions a passkey made (core/sessions/service.ts, docs/api.md §14): a passkey login's record
 * names the passkey; `revokePasskey` ends exactly the user's live sessions that passkey made, told
 * as `passkey_removed`, and leaves password sessions, another passkey's, another user's, and
 * records written before the field existed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { sessionKey, userSessionsKey } from '../../src/core/sessions/keys.ts';
import { defaultDevicePolicies, type DeviceFlag } from '../../src/core/sessions/policy.ts';
import { encodeIndexEntry, type RevokeReason } from '../../src/core/sessions/record.ts';
import { SessionService } from '../../src/core/sessions/service.ts';
import { parseTombstone } from '../../src/core/sessions/tombstone.ts';
import { cryptoRandom } from '../../src/ports/random.ts';

const UID = 'u1';
const TTL = 86_400_000;

function setup() {
  const now = 1_800_000_000_000;
  const clock = { now: () => now };
  const kv = new MemoryKv(clock);
  const ended: Array<[string, RevokeReason]> = [];
  const sessions = new SessionService({
    kv, clock, random: cryptoRandom, policies: defaultDevicePolicies, ttlMs: TTL, endedRetentionMs: TTL,
    accountStatus: async () => 'active',
    onEnded: (session, reason) => void ended.push([session.device_id, reason]),
  });
  const login = (name: string, passkeyId?: string, flag: DeviceFlag = 1, uid = UID) => sessions.issue({
    uid, flag, device: { device_id: name, device_name: name, device_model: 'test' }, method: passkeyId === undefined ? 'password' : 'passkey',
    ip: '10.0.0.1', userAgent: 'test', ...(passkeyId === undefined ? {} : { passkeyId }),
  });
  return { kv, sessions, ended, login, now };
}

describe('sessions a passkey made', () => {
  it('a passkey login\'s record names its passkey; any other login\'s record has no such field', async () => {
    const { kv, sessions, login } = setup();
    const withKey = await login('phone', 'cred-a');
    const without = await login('laptop');
    assert.equal(withKey.session.passkey_id, 'cred-a');
    assert.equal((await sessions.validate(withKey.token))?.passkey_id, 'cred-a');
    assert.equal(JSON.parse((await kv.get(sessionKey(withKey.session.sid))) ?? '{}').passkey_id, 'cred-a');
    assert.equal('passkey_id' in JSON.parse((await kv.get(sessionKey(without.session.sid))) ?? '{}'), false);
  });

  it('revokePasskey ends only that passkey\'s sessions of the user, as passkey_removed, and counts them', async () => {
    const { sessions, ended, login, now } = setup();
    const web = await login('web', 'cred-a', 1);
    const pc = await login('pc', 'cred-a', 2);
    const app = await login('app', 'cred-a', 0);
    const other = await login('other', 'cred-b');
    const password = await login('password');
    const otherUser = await login('stranger', 'cred-a', 1, 'u2');
    assert.equal(await sessions.revokePasskey(UID, 'cred-a'), 3);
    assert.deepEqual(ended.sort(), [['app', 'passkey_removed'], ['pc', 'passkey_removed'], ['web', 'passkey_removed']]);
    for (const gone of [web, pc, app]) {
      assert.equal(await sessions.validate(gone.token), null);
      assert.deepEqual(await sessions.whyEnded(gone.token), { reason: 'passkey_removed', ended_at: now });
    }
    for (const kept of [other, password, otherUser]) assert.ok(await sessions.validate(kept.token), kept.session.device_id);
    assert.equal(await sessions.revokePasskey(UID, 'cred-a'), 0, 'nothing left to end');
    assert.equal(await sessions.revokePasskey(UID, 'cred-unknown'), 0);
  });

  it('a record written before passkey_id existed is read as before and never taken for a passkey\'s', async () => {
    const { kv, sessions } = setup();
    const sid = 'old-session-sid';
    const record = {
      uid: UID, device_flag: 1, device_id: 'old', device_name: 'old', device_model: 'old', method: 'passkey', ip: '10.0.0.1',
      user_agent: 'test', created_at: 1_800_000_000_000, expires_at: 1_800_000_000_000 + TTL,
    };
    await kv.set(sessionKey(sid), JSON.stringify(record), { ttlMs: TTL });
    await kv.hset(userSessionsKey(UID), sid, encodeIndexEntry(1, record.created_at, record.expires_at));
    assert.equal(await sessions.revokePasskey(UID, 'cred-a'), 0);
    const [listed] = await sessions.list(UID);
    assert.deepEqual([listed?.sid, listed?.method, listed?.passkey_id], [sid, 'passkey', undefined]);
  });

  it('a stored passkey_removed tombstone reads back; it is a reason like the others', () => {
    assert.deepEqual(parseTombstone(JSON.stringify({ reason: 'passkey_removed', ended_at: 5 })), { reason: 'passkey_removed', ended_at: 5 });
  });
});
