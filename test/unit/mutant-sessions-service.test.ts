/**
 * The session service's behaviour path by path, on the in-memory Kv with a clock the test moves:
 * what a session records, when it stops validating, what each kind of revoke ends and with which
 * reason, the multi-device cap, and what a login does when the IM server refuses it. Kills the
 * StrykerJS mutants of src/core/sessions/service.ts that the race-focused unit tests leave
 * (test/mutation/report.md).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { SessionService, type SessionServiceOptions } from '../../src/core/sessions/service.ts';
import { defaultDevicePolicies, type DevicePolicies } from '../../src/core/sessions/policy.ts';
import type { RevokeReason, Session } from '../../src/core/sessions/record.ts';
import { ImBannedError, ImUnavailableError, type ImBridge, type ImTokenUpdate } from '../../src/ports/im-bridge.ts';
import { LatchkeyError } from '../../src/core/errors.ts';
import { cryptoRandom, type Random } from '../../src/ports/random.ts';
import { readsMeetingAt } from '../mutation/meeting-kv.ts';

const UID = 'u1';
const TTL = 3_600_000;
const T0 = Date.now();

const login = (name: string, flag: 0 | 1 | 2 = 1, uid = UID) => ({
  uid, flag, device: { device_id: name, device_name: `${name} name`, device_model: `${name} model` }, method: 'code', ip: '10.0.0.1', userAgent: `${name} agent`,
}) as const;

/**
 * The store keeps real time, the service reads the test's clock: a record the service must judge
 * expired or idle is still in the store, so the service's own check is what is asserted.
 */
function setup(extra: Partial<SessionServiceOptions> = {}) {
  let now = T0;
  const kv = new MemoryKv();
  const ended: Array<[string, RevokeReason]> = [];
  let status: 'active' | 'banned' = 'active';
  const sessions = new SessionService({
    kv, clock: { now: () => now }, random: cryptoRandom, policies: defaultDevicePolicies, ttlMs: TTL,
    accountStatus: async () => status,
    onEnded: (session, reason) => void ended.push([session.device_id, reason]),
    ...extra,
  });
  return {
    kv, sessions, ended,
    at: (ms: number) => (now = T0 + ms),
    ban: () => (status = 'banned'),
  };
}

/** Lets fire-and-forget writes (the last-seen touch) land. */
const settle = async () => {
  for (let i = 0; i < 10; i += 1) await new Promise((resolve) => setImmediate(resolve));
};

/** An IM server that records every call and fails the next update as told. */
class RecordingIm implements ImBridge {
  readonly updates: ImTokenUpdate[] = [];
  readonly quits: Array<[string, number]> = [];
  failNext: Error | null = null;
  failAll: Error | null = null;
  async updateToken(update: ImTokenUpdate): Promise<void> {
    const error = this.failAll ?? this.failNext;
    this.failNext = null;
    if (error !== null) throw error;
    this.updates.push(update);
  }
  async deviceQuit(uid: string, flag: number): Promise<void> {
    if (this.failAll !== null) throw this.failAll;
    this.quits.push([uid, flag]);
  }
}

const withIm = (im: RecordingIm) => ({ im: { bridge: im, quitRetry: { intervalMs: 1000, maxAttempts: 3 } } });

describe('issue', () => {
  it('records who logged in, how, from where, until when; indexes it; stores it for its lifetime', async () => {
    const { kv, sessions } = setup();
    const issued = await sessions.issue(login('laptop', 2));
    const { sid } = issued.session;
    const record = {
      uid: UID, device_flag: 2, device_id: 'laptop', device_name: 'laptop name', device_model: 'laptop model',
      method: 'code', ip: '10.0.0.1', user_agent: 'laptop agent', created_at: T0, expires_at: T0 + TTL,
    };
    assert.deepEqual(issued, { token: issued.token, session: { sid, ...record } }, 'no imToken without an IM bridge');
    assert.deepEqual(JSON.parse((await kv.get(`sess:${sid}`)) ?? 'null'), record);
    assert.ok(((await kv.pttl(`sess:${sid}`)) ?? 0) > TTL - 5000, 'the record lives as long as the session');
    assert.deepEqual(await kv.hgetall(`user:{${UID}}:sessions`), { [sid]: `2:${T0}:${T0 + TTL}` });
    assert.deepEqual(await sessions.validate(issued.token), { sid, ...record });
  });

  it('never rewrites a record: a taken sid draws a new token, and a random source that keeps repeating itself fails the login in the error model', async () => {
    const same: Random = { bytes: (n) => Buffer.alloc(n, 7), int: (min) => min };
    const { sessions } = setup({ random: same });
    const first = await sessions.issue(login('a'));
    await assert.rejects(sessions.issue(login('b')), (error: unknown) => error instanceof LatchkeyError && error.code === 'internal_error');
    assert.equal((await sessions.validate(first.token))?.device_id, 'a', 'the first record is untouched');
    let draws = 0;
    // The second draw repeats the first token; the draws after it are fresh.
    const repeatsOnce: Random = { bytes: (n) => (draws++ < 2 ? Buffer.alloc(n, 7) : cryptoRandom.bytes(n)), int: (min) => min };
    const { sessions: again } = setup({ random: repeatsOnce });
    const taken = await again.issue(login('a'));
    const second = await again.issue(login('b'));
    assert.equal(draws, 3, 'one more token was drawn');
    assert.notEqual(second.session.sid, taken.session.sid);
    assert.equal((await again.validate(second.token))?.device_id, 'b');
    assert.equal((await again.validate(taken.token))?.device_id, 'a');
  });

  it('refuses a login of an account banned meanwhile and leaves nothing behind', async () => {
    const { kv, sessions, ended, ban } = setup();
    ban();
    await assert.rejects(sessions.issue(login('a')), (error: unknown) => error instanceof LatchkeyError && error.code === 'account_disabled');
    assert.deepEqual(ended, [['a', 'ban']]);
    assert.deepEqual(kv.keys(), []);
  });

  it('abandon ends the session as aborted', async () => {
    const { sessions, ended } = setup();
    const issued = await sessions.issue(login('a'));
    await sessions.abandon(issued.session);
    assert.deepEqual(ended, [['a', 'aborted']]);
    assert.equal(await sessions.validate(issued.token), null);
  });
});

describe('validate', () => {
  it('refuses garbage and unknown tokens', async () => {
    const { sessions } = setup();
    assert.equal(await sessions.validate('not a token'), null);
    assert.equal(await sessions.validate('A'.repeat(43)), null);
  });

  it('refuses an unreadable record', async () => {
    const { kv, sessions } = setup();
    const issued = await sessions.issue(login('a'));
    await kv.set(`sess:${issued.session.sid}`, 'garbage');
    assert.equal(await sessions.validate(issued.token), null);
  });

  it('stops at expires_at exactly, by its own clock', async () => {
    const { sessions, at } = setup();
    const issued = await sessions.issue(login('a'));
    at(TTL - 1);
    assert.ok(await sessions.validate(issued.token));
    at(TTL);
    assert.equal(await sessions.validate(issued.token), null);
  });

  it('without an inactivity timeout, a session unused for long still validates', async () => {
    const { sessions, at } = setup();
    const issued = await sessions.issue(login('a'));
    at(TTL - 1);
    assert.ok(await sessions.validate(issued.token));
  });

  it('with one, ends a session unused for longer than it, counted from the last use or the login', async () => {
    const { sessions, ended, at } = setup({ idleTimeoutMs: 1000, touchIntervalMs: 0 });
    const issued = await sessions.issue(login('a'));
    at(1000);
    assert.ok(await sessions.validate(issued.token), 'idle exactly the timeout: still live');
    await settle();
    at(2000);
    assert.ok(await sessions.validate(issued.token), 'counted from the last use, not the login');
    await settle();
    at(3001);
    assert.equal(await sessions.validate(issued.token), null);
    assert.deepEqual(ended, [['a', 'idle']]);
    at(3002);
    assert.deepEqual(await sessions.list(UID), [], 'ended, not only refused');
  });

  it('with one, a session never used since its login idles from its login', async () => {
    const { sessions, ended, at } = setup({ idleTimeoutMs: 1000 });
    const issued = await sessions.issue(login('a'));
    at(1001);
    assert.equal(await sessions.validate(issued.token), null);
    assert.deepEqual(ended, [['a', 'idle']]);
  });
});

describe('the last-seen stamp', () => {
  it('goes with the session: every way of ending one deletes its stamp', async () => {
    const { kv, sessions } = setup();
    const ends: Array<(token: string, sid: string) => Promise<unknown>> = [
      async (token) => sessions.logout((await sessions.validate(token))!),
      async (_token, sid) => sessions.revoke(UID, sid),
      async () => sessions.revokeAll(UID, 'all'),
    ];
    for (const end of ends) {
      const issued = await sessions.issue(login('a'));
      await sessions.validate(issued.token);
      await settle();
      assert.notEqual(await kv.get(`seen:${issued.session.sid}`), null, 'stamped');
      await end(issued.token, issued.session.sid);
      await settle();
      assert.deepEqual(kv.keys().filter((key) => key.startsWith('seen:')), [], String(end));
    }
  });

  it('is written at most once per interval (a minute by default), with the session\'s remaining lifetime', async () => {
    const { kv, sessions, at } = setup();
    const issued = await sessions.issue(login('a'));
    const seen = `seen:${issued.session.sid}`;
    at(10);
    await sessions.validate(issued.token);
    await settle();
    assert.equal(await kv.get(seen), String(T0 + 10));
    const ttl = (await kv.pttl(seen)) ?? 0;
    assert.ok(ttl <= TTL - 10 && ttl > TTL - 5000, `TTL ${ttl}`);
    at(10 + 59_999);
    await sessions.validate(issued.token);
    await settle();
    assert.equal(await kv.get(seen), String(T0 + 10), 'rewritten within the interval');
    at(10 + 60_000);
    await sessions.validate(issued.token);
    await settle();
    assert.equal(await kv.get(seen), String(T0 + 60_010));
    const [listed] = await sessions.list(UID);
    assert.equal(listed?.last_seen_at, T0 + 60_010);
  });

  it('a lost write is retried by the next request, not only after the interval', async () => {
    const { kv, sessions } = setup();
    const issued = await sessions.issue(login('a'));
    const set = kv.set.bind(kv);
    let fail = true;
    kv.set = async (key, value, options) => {
      if (key.startsWith('seen:') && fail) {
        fail = false;
        throw new Error('store down');
      }
      return set(key, value, options);
    };
    await sessions.validate(issued.token);
    await settle();
    assert.equal(await kv.get(`seen:${issued.session.sid}`), null);
    await sessions.validate(issued.token);
    await settle();
    assert.equal(await kv.get(`seen:${issued.session.sid}`), String(T0));
  });
});

describe('list', () => {
  it('lists live sessions newest first, last seen at the login until used', async () => {
    const { sessions, at } = setup();
    const a = await sessions.issue(login('a'));
    at(5);
    const b = await sessions.issue(login('b', 2));
    at(3);
    const c = await sessions.issue(login('c', 0));
    const listed = await sessions.list(UID);
    assert.deepEqual(listed.map((s) => s.device_id), ['b', 'c', 'a']);
    assert.deepEqual(listed.map((s) => s.last_seen_at), [T0 + 5, T0 + 3, T0]);
    assert.deepEqual(listed.map((s) => s.sid), [b.session.sid, c.session.sid, a.session.sid]);
  });

  it('drops the index entries of sessions whose record is gone, and of expired ones', async () => {
    const { kv, sessions, at } = setup();
    const a = await sessions.issue(login('a'));
    at(1);
    const b = await sessions.issue(login('b'));
    at(2);
    const c = await sessions.issue(login('c', 2));
    await kv.del(`sess:${a.session.sid}`);
    assert.deepEqual((await sessions.list(UID)).map((s) => s.device_id), ['c', 'b']);
    assert.deepEqual(Object.keys(await kv.hgetall(`user:{${UID}}:sessions`)).sort(), [b.session.sid, c.session.sid].sort());
    at(TTL + 1);
    assert.deepEqual((await sessions.list(UID)).map((s) => s.device_id), ['c'], 'b expired at T0 + 1 + TTL');
    assert.deepEqual(Object.keys(await kv.hgetall(`user:{${UID}}:sessions`)), [c.session.sid]);
  });
});

describe('revoke', () => {
  it('ends one of the user\'s sessions, as revoked unless told why; nothing for a sid that is not theirs', async () => {
    const { kv, sessions, ended } = setup();
    const a = await sessions.issue(login('a'));
    const b = await sessions.issue(login('b'));
    const other = await sessions.issue(login('x', 1, 'u2'));
    assert.equal(await sessions.revoke(UID, other.session.sid), false);
    assert.equal(await sessions.revoke(UID, 'unknown'), false);
    await kv.hset(`user:{${UID}}:sessions`, 'bad', '7:1:2');
    assert.equal(await sessions.revoke(UID, 'bad'), false);
    assert.equal(await sessions.revoke(UID, a.session.sid), true);
    assert.equal(await sessions.revoke(UID, b.session.sid, 'password'), true);
    assert.equal(await sessions.revoke(UID, b.session.sid), false);
    assert.deepEqual(ended, [['a', 'revoked'], ['b', 'password']]);
    assert.ok(await sessions.validate(other.token));
  });

  it('revokeOthers ends every session but the one kept, as others, and counts them', async () => {
    const { sessions, ended } = setup();
    const keep = await sessions.issue(login('keep'));
    await sessions.issue(login('b', 2));
    await sessions.issue(login('c', 0));
    assert.equal(await sessions.revokeOthers(UID, keep.session.sid), 2);
    assert.deepEqual(ended.map(([, reason]) => reason), ['others', 'others']);
    assert.deepEqual((await sessions.list(UID)).map((s) => s.device_id), ['keep']);
    assert.equal(await sessions.revokeOthers(UID, keep.session.sid), 0);
  });

  it('revokeAll ends every session with the reason given, and counts them', async () => {
    const { sessions, ended } = setup();
    await sessions.issue(login('a'));
    await sessions.issue(login('b', 0));
    assert.equal(await sessions.revokeAll(UID, 'password'), 2);
    assert.deepEqual(ended.map(([, reason]) => reason), ['password', 'password']);
    assert.equal(await sessions.revokeAll(UID, 'password'), 0);
  });

  it('revokeDevice ends the sessions of that device only, as device, and counts them', async () => {
    const { sessions, ended } = setup();
    await sessions.issue(login('phone', 0));
    await sessions.issue(login('laptop', 1));
    await sessions.issue(login('laptop', 2));
    assert.equal(await sessions.revokeDevice(UID, 'laptop'), 2);
    assert.deepEqual(ended, [['laptop', 'device'], ['laptop', 'device']]);
    assert.deepEqual((await sessions.list(UID)).map((s) => s.device_id), ['phone']);
  });
});

describe('device policies', () => {
  const capped: DevicePolicies = { ...defaultDevicePolicies, 1: { mode: 'multi', cap: 2 } };

  it('past the cap of a multi flag, a login ends the oldest of that flag only, as cap', async () => {
    const { sessions, ended, at } = setup({ policies: capped });
    await sessions.issue(login('w1'));
    at(1);
    await sessions.issue(login('p1', 2));
    at(2);
    await sessions.issue(login('w2'));
    assert.deepEqual(ended, []);
    at(3);
    await sessions.issue(login('w3'));
    assert.deepEqual(ended, [['w1', 'cap']]);
    at(4);
    await sessions.issue(login('w4'));
    assert.deepEqual(ended, [['w1', 'cap'], ['w2', 'cap']]);
    assert.deepEqual((await sessions.list(UID)).map((s) => s.device_id), ['w4', 'w3', 'p1']);
  });

  it('of two logins at the same instant, the sid decides which is older: only the newer can end the older', async () => {
    const one: DevicePolicies = { ...defaultDevicePolicies, 1: { mode: 'multi', cap: 1 } };
    const outcomes = new Set<string>();
    for (let round = 0; round < 16; round += 1) {
      const { sessions } = setup({ policies: one });
      const a = await sessions.issue(login('a'));
      const b = await sessions.issue(login('b'));
      const listed = (await sessions.list(UID)).map((s) => s.device_id).sort();
      // b ends a only when a's sid makes it the older; otherwise a counts as newer and stays.
      const expected = a.session.sid < b.session.sid ? ['b'] : ['a', 'b'];
      assert.deepEqual(listed, expected);
      outcomes.add(expected.join());
    }
    assert.equal(outcomes.size, 2, 'both orders of sids met (1 in 2^15 chance of a false failure)');
  });

  it('an exclusive login replaces the flag\'s session, and the slot names the new one alone', async () => {
    const { kv, sessions, ended } = setup();
    const first = await sessions.issue(login('p1', 0));
    assert.equal(await kv.get(`user:{${UID}}:slot:0`), first.session.sid);
    const second = await sessions.issue(login('p2', 0));
    assert.deepEqual(ended, [['p1', 'replaced']]);
    assert.equal(await kv.get(`user:{${UID}}:slot:0`), second.session.sid);
    assert.equal(await sessions.logout(second.session), true);
    assert.equal(await kv.get(`user:{${UID}}:slot:0`), null, 'the last session of the flag releases its slot');
  });
});

describe('with an IM server', () => {
  it('a login gets the flag\'s IM token, which a logout rotates or drops and which the service reports', async () => {
    const im = new RecordingIm();
    const { sessions } = setup(withIm(im));
    const a = await sessions.issue(login('a'));
    assert.match(a.imToken ?? '', /^[0-9a-f]{32}$/);
    assert.equal(await sessions.im.current(a.session.uid, a.session.device_flag), a.imToken);
    const b = await sessions.issue(login('b'));
    assert.equal(b.imToken, a.imToken, 'a Web login shares the flag\'s token');
    assert.deepEqual(await sessions.logoutWithOutcome(a.session), { ended: true, im: 'ok' });
    assert.notEqual(await sessions.im.current(b.session.uid, b.session.device_flag), a.imToken, 'rotated when a session of the flag ended');
    assert.deepEqual(await sessions.logoutWithOutcome(a.session), { ended: false, im: null });
    assert.deepEqual(await sessions.logoutWithOutcome(b.session), { ended: true, im: 'ok' });
    assert.equal(await sessions.im.current(b.session.uid, b.session.device_flag), null);
    assert.equal(await sessions.im.owesQuit(UID), false);
    assert.equal(await sessions.im.owedQuitCount(), 0);
    assert.deepEqual(await sessions.im.drainOwedQuits(), { delivered: 0, failed: 0, overdue: 0 });
  });

  it('a logout the IM server cannot hear of still ends the session, and the quit is owed', async () => {
    const im = new RecordingIm();
    const { sessions } = setup(withIm(im));
    const a = await sessions.issue(login('a'));
    im.failAll = new ImUnavailableError('down');
    assert.deepEqual(await sessions.logoutWithOutcome(a.session), { ended: true, im: 'failed' });
    assert.equal(await sessions.validate(a.token), null);
    assert.equal(await sessions.im.owesQuit(UID), true);
    assert.equal(await sessions.im.owedQuitCount(), 1);
  });

  it('a sweep tells the IM server once per flag, and a revokeAll quits every device at once', async () => {
    const im = new RecordingIm();
    const { sessions } = setup(withIm(im));
    const keep = await sessions.issue(login('keep'));
    await sessions.issue(login('b'));
    await sessions.issue(login('c'));
    await sessions.issue(login('d', 2));
    im.updates.length = 0;
    im.quits.length = 0;
    assert.equal(await sessions.revokeOthers(UID, keep.session.sid), 3);
    assert.deepEqual([...im.quits].sort(), [[UID, 1], [UID, 2]], 'one rotation of Web, one quit of PC');
    assert.equal(im.updates.length, 1);
    im.quits.length = 0;
    assert.equal(await sessions.revokeDevice(UID, 'keep'), 1);
    assert.deepEqual(im.quits, [[UID, 1]]);
    await sessions.issue(login('e'));
    im.quits.length = 0;
    assert.equal(await sessions.revokeAll(UID, 'ban'), 1);
    assert.deepEqual(im.quits, [[UID, -1]]);
  });

  it('a login the IM server refuses ends as aborted: banned is account_disabled, down is upstream_unavailable', async () => {
    const im = new RecordingIm();
    const { kv, sessions, ended } = setup(withIm(im));
    im.failNext = new ImBannedError('banned');
    await assert.rejects(sessions.issue(login('a')), (error: unknown) => error instanceof LatchkeyError && error.code === 'account_disabled');
    im.failAll = new ImUnavailableError('down');
    await assert.rejects(sessions.issue(login('b')), (error: unknown) => error instanceof LatchkeyError && error.code === 'upstream_unavailable');
    const strange = new TypeError('unexpected');
    im.failAll = strange;
    await assert.rejects(sessions.issue(login('c')), (error: unknown) => error === strange);
    assert.deepEqual(ended, [['a', 'aborted'], ['b', 'aborted'], ['c', 'aborted']]);
    assert.deepEqual(kv.keys().filter((key) => key.startsWith('sess:')), []);
    assert.deepEqual(await sessions.list(UID), []);
  });

  it('without one, the IM calls answer null or nothing', async () => {
    const { sessions } = setup();
    const a = await sessions.issue(login('a'));
    assert.equal(await sessions.im.current(a.session.uid, a.session.device_flag), null);
    assert.equal(await sessions.im.owesQuit(UID), null);
    assert.equal(await sessions.im.owedQuitCount(), 0);
    assert.equal(await sessions.im.drainOwedQuits(), null);
    assert.deepEqual(await sessions.logoutWithOutcome(a.session), { ended: true, im: null });
  });
});

describe('onEnded', () => {
  it('hears of each ended session once, with the session itself', async () => {
    const seen: Session[] = [];
    const { sessions } = setup({ onEnded: (session) => void seen.push(session) });
    const a = await sessions.issue(login('a'));
    await sessions.logout(a.session);
    await sessions.logout(a.session);
    await sessions.revokeAll(UID, 'all');
    assert.deepEqual(seen, [a.session]);
  });
});

describe('reasons and messages', () => {
  it('a logout ends its session as logout', async () => {
    const { sessions, ended } = setup();
    const a = await sessions.issue(login('a'));
    await sessions.logout(a.session);
    assert.deepEqual(ended, [['a', 'logout']]);
  });

  it('a login the IM server could not take says so, and when to retry', async () => {
    const im = new RecordingIm();
    const { sessions } = setup(withIm(im));
    im.failAll = new ImUnavailableError('down');
    await assert.rejects(sessions.issue(login('a')), { code: 'upstream_unavailable', message: 'the IM server is unavailable; try again shortly' });
  });
});

describe('the multi-device cap under clock skew', () => {
  it('ends the oldest by created_at, not the first indexed', async () => {
    // Two nodes whose clocks disagree: the second login is indexed after the first but is older.
    const { sessions, ended, at } = setup({ policies: { ...defaultDevicePolicies, 1: { mode: 'multi', cap: 2 } } });
    at(5);
    await sessions.issue(login('w1'));
    at(1);
    await sessions.issue(login('w2'));
    at(10);
    await sessions.issue(login('w3'));
    assert.deepEqual(ended, [['w2', 'cap']]);
  });
});

describe('the exclusive slot', () => {
  it('lives as long as a session, through replacements', async () => {
    const { kv, sessions } = setup();
    await sessions.issue(login('p1', 0));
    const slot = `user:{${UID}}:slot:0`;
    assert.ok(((await kv.pttl(slot)) ?? 0) > TTL - 5000, 'the first login\'s slot expires with it');
    await sessions.issue(login('p2', 0));
    assert.ok(((await kv.pttl(slot)) ?? 0) > TTL - 5000, 'kept through the replacement and its clean-up');
  });

  it('of two first logins whose reads of the empty slot meet, only one takes it', async () => {
    const memory = new MemoryKv();
    const { kv, arm } = readsMeetingAt(memory, `user:{${UID}}:slot:0`);
    const { sessions } = setup({ kv });
    arm(2);
    await Promise.all([sessions.issue(login('p1', 0)), sessions.issue(login('p2', 0))]);
    assert.equal((await sessions.list(UID)).length, 1, 'live APP sessions');
  });

  it('a session ended while it logged in does not keep the slot', async () => {
    let sessions: SessionService | undefined;
    // A revoke-all lands between the login joining the index and taking the slot.
    const { kv, sessions: service } = setup({
      accountStatus: async (uid) => ((await sessions?.revokeAll(uid, 'all')), 'active'),
    });
    sessions = service;
    await service.issue(login('p1', 0));
    assert.equal(await kv.get(`user:{${UID}}:slot:0`), null);
  });
});

describe('sweeps count and settle only what they ended', () => {
  /** A store where another call's logout wins the GETDEL of this sid's record. */
  function endedElsewhere(kv: MemoryKv, sid: () => string) {
    const getdel = kv.getdel.bind(kv);
    kv.getdel = async (key) => {
      if (key !== `sess:${sid()}`) return getdel(key);
      await getdel(key);
      return null;
    };
  }

  it('revokeDevice', async () => {
    const im = new RecordingIm();
    const { kv, sessions } = setup(withIm(im));
    await sessions.issue(login('laptop', 1));
    const pc = await sessions.issue(login('laptop', 2));
    endedElsewhere(kv, () => pc.session.sid);
    im.quits.length = 0;
    assert.equal(await sessions.revokeDevice(UID, 'laptop'), 1);
    assert.deepEqual(im.quits, [[UID, 1]], 'the PC flag is for the call that ended its session');
  });

  it('revokeOthers', async () => {
    const im = new RecordingIm();
    const { kv, sessions } = setup(withIm(im));
    const keep = await sessions.issue(login('keep', 1));
    await sessions.issue(login('b', 1));
    const pc = await sessions.issue(login('c', 2));
    endedElsewhere(kv, () => pc.session.sid);
    im.quits.length = 0;
    assert.equal(await sessions.revokeOthers(UID, keep.session.sid), 1);
    assert.deepEqual(im.quits, [[UID, 1]]);
  });
});

describe('the IM token of a login that ends or is refused meanwhile', () => {
  it('a session revoked while it acquired its IM token leaves no token behind', async () => {
    const im = new RecordingIm();
    let sessions: SessionService | undefined;
    let revoke = true;
    const { kv, sessions: service } = setup({
      ...withIm(im),
      accountStatus: async (uid) => {
        if (revoke) await sessions?.revokeAll(uid, 'all');
        return 'active';
      },
    });
    sessions = service;
    const issued = await service.issue(login('a'));
    revoke = false;
    assert.equal(await kv.get(`user:{${UID}}:im:1`), null);
    assert.equal(await service.im.current(issued.session.uid, issued.session.device_flag), null);
  });

  it('a refused login removes a token no live session holds', async () => {
    const im = new RecordingIm();
    const { kv, sessions, ban } = setup(withIm(im));
    const a = await sessions.issue(login('a'));
    // a's record is gone (expired) while its token is still there.
    await kv.del(`sess:${a.session.sid}`);
    ban();
    im.quits.length = 0;
    await assert.rejects(sessions.issue(login('b')));
    assert.deepEqual(im.quits, [[UID, 1]]);
    assert.equal(await kv.get(`user:{${UID}}:im:1`), null);
  });

  it('the last session of a flag drops its token though other flags have sessions', async () => {
    const im = new RecordingIm();
    const { kv, sessions } = setup(withIm(im));
    const web = await sessions.issue(login('a', 1));
    await sessions.issue(login('b', 2));
    await sessions.logout(web.session);
    assert.equal(await kv.get(`user:{${UID}}:im:1`), null);
  });

  it('the retry worker delivers an owed quit once the IM server is back', async () => {
    const im = new RecordingIm();
    const { sessions } = setup(withIm(im));
    const a = await sessions.issue(login('a'));
    im.failAll = new ImUnavailableError('down');
    await sessions.logout(a.session);
    im.failAll = null;
    assert.deepEqual(await sessions.im.drainOwedQuits(), { delivered: 1, failed: 0, overdue: 0 });
    assert.equal(await sessions.im.owedQuitCount(), 0);
    assert.equal(await sessions.im.owesQuit(UID), false);
  });
});
