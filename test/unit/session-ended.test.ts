/**
 * Why a session ended (core/sessions/tombstone.ts, docs/api.md §3): each way of ending a session
 * leaves its reason under the sid for the retention, the session that took a place is named, an
 * expiry is told once it is past, and nothing is told for unknown or malformed tokens.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { SessionService } from '../../src/core/sessions/service.ts';
import { defaultDevicePolicies } from '../../src/core/sessions/policy.ts';
import type { DeviceFlag } from '../../src/core/sessions/policy.ts';
import { cryptoRandom } from '../../src/ports/random.ts';

const UID = 'u1';
const TTL = 30 * 86_400_000;
const RETENTION = 7 * 86_400_000;

function setup(options: { retention?: number; idleTimeoutMs?: number; status?: 'active' | 'banned' } = {}) {
  let now = 1_800_000_000_000;
  const clock = { now: () => now };
  const kv = new MemoryKv(clock);
  const sessions = new SessionService({
    kv, clock, random: cryptoRandom, policies: defaultDevicePolicies, ttlMs: TTL,
    endedRetentionMs: options.retention ?? RETENTION,
    ...(options.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.idleTimeoutMs }),
    accountStatus: async () => options.status ?? 'active',
  });
  const login = (name: string, flag: DeviceFlag = 0, uid = UID) => sessions.issue({
    uid, flag, device: { device_id: name, device_name: `${name} name`, device_model: `${name} model` }, method: 'password', ip: '10.0.0.1', userAgent: 'test',
  });
  return { kv, sessions, login, advance: (ms: number) => (now += ms), now: () => now };
}

describe('why a session ended', () => {
  it('an APP login replacing the phone names the new device', async () => {
    const { sessions, login, now } = setup();
    const phone = await login('old phone');
    const next = await login('iPhone 15');
    assert.equal(await sessions.validate(phone.token), null);
    assert.deepEqual(await sessions.whyEnded(phone.token), {
      reason: 'replaced', ended_at: now(), by: { device_flag: 0, device_name: 'iPhone 15 name', device_model: 'iPhone 15 model' },
    });
    assert.equal(await sessions.whyEnded(next.token), null, 'a live session has no tombstone to tell');
  });

  it('the cap names the session that pushed the oldest out', async () => {
    const { sessions, login, advance } = setup();
    const oldest = await login('web0', 1);
    for (let i = 1; i <= 10; i += 1) {
      advance(1);
      await login(`web${i}`, 1);
    }
    const told = await sessions.whyEnded(oldest.token);
    assert.equal(told?.reason, 'cap');
    assert.equal(told?.by?.device_name, 'web10 name');
  });

  it('tells each other way apart', async () => {
    const { sessions, login } = setup();
    const cases: Array<[string, (token: string, sid: string) => Promise<unknown>]> = [
      ['logout', async (token) => sessions.logout((await sessions.validate(token))!)],
      ['revoked', async (_token, sid) => sessions.revoke(UID, sid)],
      ['revoked', async () => sessions.revokeOthers(UID, 'some-other-sid')],
      ['password_changed', async () => sessions.revokeOthers(UID, 'some-other-sid', 'password_changed')],
      ['admin', async () => sessions.revokeAll(UID, 'all')],
      ['banned', async () => sessions.revokeAll(UID, 'ban')],
      ['password_reset', async () => sessions.revokeAll(UID, 'password')],
      ['idp_logout', async (_token, sid) => sessions.revoke(UID, sid, 'idp_logout')],
    ];
    for (const [reason, end] of cases) {
      const issued = await login(reason, 1);
      await end(issued.token, issued.session.sid);
      const told = await sessions.whyEnded(issued.token);
      assert.equal(told?.reason, reason);
      assert.equal(told?.by, undefined, `${reason} names nobody`);
    }
  });

  it('tells an expiry once it is past, and an inactivity timeout as one', async () => {
    const { sessions, login, advance } = setup();
    const issued = await login('phone');
    assert.equal(await sessions.whyEnded(issued.token), null, 'not yet expired: nothing to tell');
    advance(TTL);
    assert.equal(await sessions.validate(issued.token), null);
    assert.deepEqual(await sessions.whyEnded(issued.token), { reason: 'expired', ended_at: issued.session.expires_at });

    const idle = setup({ idleTimeoutMs: 600_000 });
    const quiet = await idle.login('tablet', 1);
    idle.advance(600_001);
    assert.equal(await idle.sessions.validate(quiet.token), null);
    assert.equal((await idle.sessions.whyEnded(quiet.token))?.reason, 'expired');
  });

  it('forgets after the retention, and never tells about unknown or malformed tokens', async () => {
    const { sessions, login, advance } = setup();
    const issued = await login('phone');
    await sessions.logout(issued.session);
    advance(RETENTION - 1);
    assert.equal((await sessions.whyEnded(issued.token))?.reason, 'logout');
    advance(1);
    assert.equal(await sessions.whyEnded(issued.token), null, 'past the retention');
    assert.equal(await sessions.whyEnded('A'.repeat(43)), null, 'never issued');
    assert.equal(await sessions.whyEnded('not a token'), null);
  });

  it('an expiry past its retention is forgotten too', async () => {
    const { sessions, login, advance } = setup();
    const issued = await login('phone');
    advance(TTL + RETENTION);
    assert.equal(await sessions.whyEnded(issued.token), null);
  });

  it('with a retention of 0 writes nothing and tells nothing', async () => {
    const { kv, sessions, login } = setup({ retention: 0 });
    const issued = await login('phone');
    await login('next phone');
    assert.equal(await sessions.whyEnded(issued.token), null);
    assert.deepEqual(kv.keys().filter((key) => key.startsWith('ended:')), []);
  });

  it('a login undone before it answered tells nothing (its token was never handed out)', async () => {
    const { sessions, login } = setup();
    const issued = await login('phone');
    await sessions.abandon(issued.session);
    assert.equal(await sessions.validate(issued.token), null);
    assert.equal(await sessions.whyEnded(issued.token), null);
  });
});
