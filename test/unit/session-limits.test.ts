/**
 * Session limits on the session core over the in-memory Kv (docs/design.md §3.2, invariant 7):
 * evict_oldest ends the oldest sessions of the group (reason `cap`, by the new device), reject_new
 * refuses with 409 `session_limit` and leaves nothing behind; several limits, the exclusive APP slot
 * and the multi cap together.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { LatchkeyError } from '../../src/core/errors.ts';
import { limitSlotKey } from '../../src/core/sessions/keys.ts';
import { parseSlot } from '../../src/core/sessions/limit-slot.ts';
import { defaultDevicePolicies, type DeviceFlag, type DevicePolicies, type SessionLimit } from '../../src/core/sessions/policy.ts';
import { SessionService, type IssuedSession } from '../../src/core/sessions/service.ts';
import type { Clock } from '../../src/ports/clock.ts';
import { cryptoRandom } from '../../src/ports/random.ts';

const APP: DeviceFlag = 0;
const WEB: DeviceFlag = 1;
const PC: DeviceFlag = 2;
const UID = 'u1';

/** Every reading a millisecond later: logins one after another never tie on created_at. */
let now = Date.now();
const clock: Clock = { now: () => now++ };

function service(kv: MemoryKv, limits: readonly SessionLimit[], policies: DevicePolicies = defaultDevicePolicies): SessionService {
  return new SessionService({
    kv, clock, random: cryptoRandom, policies, limits, ttlMs: 3_600_000, endedRetentionMs: 3_600_000, accountStatus: async () => 'active',
  });
}

const login = (sessions: SessionService, flag: DeviceFlag, name: string): Promise<IssuedSession> => sessions.issue({
  uid: UID, flag, device: { device_id: name, device_name: name, device_model: `model-${name}` }, method: 'password', ip: '127.0.0.1', userAgent: 'test',
});

async function live(sessions: SessionService, ...issued: IssuedSession[]): Promise<boolean[]> {
  return Promise.all(issued.map(async ({ token }) => (await sessions.validate(token)) !== null));
}

/** Every key and value of the store, to compare before and after a refused login. */
async function snapshot(kv: MemoryKv): Promise<Record<string, unknown>> {
  const entries = await Promise.all(kv.keys().sort().map(async (key) => {
    const hash = await kv.hgetall(key).catch(() => null);
    return [key, hash !== null && Object.keys(hash).length > 0 ? hash : await kv.get(key).catch(() => null)] as const;
  }));
  return Object.fromEntries(entries);
}

function assertSessionLimit(error: unknown, limit: { flags: number[]; max: number }): true {
  assert.ok(error instanceof LatchkeyError, String(error));
  assert.equal(error.code, 'session_limit');
  assert.equal(error.status, 409);
  assert.deepEqual(error.details, { limit });
  return true;
}

describe('session limits: evict_oldest', () => {
  it('ends the oldest sessions of the group past max, whichever flag, telling them why and by whom', async () => {
    const kv = new MemoryKv();
    const sessions = service(kv, [{ flags: [WEB, PC], max: 2, onExceed: 'evict_oldest' }]);
    const web1 = await login(sessions, WEB, 'web1');
    const pc1 = await login(sessions, PC, 'pc1');
    const app = await login(sessions, APP, 'app');
    const web2 = await login(sessions, WEB, 'web2');
    assert.deepEqual(await live(sessions, web1, pc1, app, web2), [false, true, true, true]);
    const ended = await sessions.whyEnded(web1.token);
    assert.equal(ended?.reason, 'cap');
    assert.deepEqual(ended?.by, { device_flag: WEB, device_name: 'web2', device_model: 'model-web2' });
    const pc2 = await login(sessions, PC, 'pc2');
    assert.deepEqual(await live(sessions, pc1, web2, pc2), [false, true, true]);
    const slot = parseSlot((await kv.get(limitSlotKey(UID, [WEB, PC]))) ?? '');
    assert.deepEqual(slot.members.map((m) => m.sid), [web2.session.sid, pc2.session.sid]);
    assert.deepEqual(slot.owed, [], 'the ended sessions were released from the slot');
  });

  it('logging out frees a seat: nothing is evicted by the next login', async () => {
    const kv = new MemoryKv();
    const sessions = service(kv, [{ flags: [WEB], max: 1, onExceed: 'evict_oldest' }]);
    const web1 = await login(sessions, WEB, 'web1');
    await sessions.logout(web1.session);
    assert.equal(await kv.get(limitSlotKey(UID, [WEB])), null, 'the emptied slot is deleted');
    const web2 = await login(sessions, WEB, 'web2');
    assert.deepEqual(await live(sessions, web2), [true]);
    assert.equal((await sessions.whyEnded(web1.token))?.reason, 'logout');
  });

  it('a limit configured after sessions exist counts them from the next login (the slot is seeded from the index)', async () => {
    const kv = new MemoryKv();
    const before = service(kv, []);
    const web1 = await login(before, WEB, 'web1');
    const web2 = await login(before, WEB, 'web2');
    const after = service(kv, [{ flags: [WEB], max: 1, onExceed: 'evict_oldest' }]);
    const web3 = await login(after, WEB, 'web3');
    assert.deepEqual(await live(after, web1, web2, web3), [false, false, true]);
  });

  it('the exclusive APP slot replaces first: a new phone does not also evict a Web session', async () => {
    const kv = new MemoryKv();
    const sessions = service(kv, [{ flags: [APP, WEB], max: 2, onExceed: 'evict_oldest' }]);
    const app1 = await login(sessions, APP, 'app1');
    const web = await login(sessions, WEB, 'web');
    const app2 = await login(sessions, APP, 'app2');
    assert.deepEqual(await live(sessions, app1, web, app2), [false, true, true]);
    assert.equal((await sessions.whyEnded(app1.token))?.reason, 'replaced');
  });

  it('the multi cap of a flag still applies inside a group', async () => {
    const kv = new MemoryKv();
    const policies: DevicePolicies = { ...defaultDevicePolicies, [WEB]: { mode: 'multi', cap: 1 } };
    const sessions = service(kv, [{ flags: [WEB, PC], max: 2, onExceed: 'evict_oldest' }], policies);
    const web1 = await login(sessions, WEB, 'web1');
    const pc = await login(sessions, PC, 'pc');
    const web2 = await login(sessions, WEB, 'web2');
    assert.deepEqual(await live(sessions, web1, pc, web2), [false, true, true]);
  });
});

describe('session limits: reject_new', () => {
  it('refuses the login past max with 409 session_limit and details.limit, and leaves no key behind', async () => {
    const kv = new MemoryKv();
    const sessions = service(kv, [{ flags: [WEB, PC], max: 2, onExceed: 'reject_new' }]);
    const web = await login(sessions, WEB, 'web');
    const pc = await login(sessions, PC, 'pc');
    const before = await snapshot(kv);
    await assert.rejects(login(sessions, WEB, 'refused'), (error) => assertSessionLimit(error, { flags: [WEB, PC], max: 2 }));
    assert.deepEqual(await snapshot(kv), before, 'the refused login left something in the store');
    assert.deepEqual(await live(sessions, web, pc), [true, true]);
    // Another flag is not in the group.
    await login(sessions, APP, 'app');
    // A logout frees a seat.
    await sessions.logout(pc.session);
    const web2 = await login(sessions, WEB, 'web2');
    assert.deepEqual(await live(sessions, web, web2), [true, true]);
  });

  it('a member whose record is gone (ended, not yet released) does not count', async () => {
    const kv = new MemoryKv();
    const sessions = service(kv, [{ flags: [WEB], max: 1, onExceed: 'reject_new' }]);
    const web1 = await login(sessions, WEB, 'web1');
    // An end whose release never landed: the record is gone, the slot still names it.
    await kv.del(`sess:${web1.session.sid}`);
    const web2 = await login(sessions, WEB, 'web2');
    const slot = parseSlot((await kv.get(limitSlotKey(UID, [WEB]))) ?? '');
    assert.deepEqual(slot.members.map((m) => m.sid), [web2.session.sid]);
  });

  it('counts sessions made before the limit was configured', async () => {
    const kv = new MemoryKv();
    await login(service(kv, []), WEB, 'web1');
    const sessions = service(kv, [{ flags: [WEB], max: 1, onExceed: 'reject_new' }]);
    const before = await snapshot(kv);
    await assert.rejects(login(sessions, WEB, 'refused'), (error) => assertSessionLimit(error, { flags: [WEB], max: 1 }));
    assert.deepEqual(await snapshot(kv), before);
  });

  it('does not let an exclusive APP login replace the phone past a full group: nothing is ended, nothing is left', async () => {
    const kv = new MemoryKv();
    const sessions = service(kv, [{ flags: [APP, WEB], max: 2, onExceed: 'reject_new' }]);
    const app = await login(sessions, APP, 'app');
    const web = await login(sessions, WEB, 'web');
    const before = await snapshot(kv);
    await assert.rejects(login(sessions, APP, 'app2'), (error) => assertSessionLimit(error, { flags: [APP, WEB], max: 2 }));
    assert.deepEqual(await snapshot(kv), before);
    assert.deepEqual(await live(sessions, app, web), [true, true]);
  });
});

describe('session limits: several at once', () => {
  it('a later reject_new limit that refuses gives back the seat an earlier one reserved', async () => {
    const kv = new MemoryKv();
    const sessions = service(kv, [
      { flags: [WEB, PC], max: 5, onExceed: 'reject_new' },
      { flags: [WEB], max: 1, onExceed: 'reject_new' },
    ]);
    await login(sessions, WEB, 'web');
    const before = await snapshot(kv);
    await assert.rejects(login(sessions, WEB, 'refused'), (error) => assertSessionLimit(error, { flags: [WEB], max: 1 }));
    assert.deepEqual(await snapshot(kv), before, 'the seat in the [1, 2] group was not given back');
  });

  it('reject_new is checked before evict_oldest ends anything', async () => {
    const kv = new MemoryKv();
    const sessions = service(kv, [
      { flags: [WEB], max: 1, onExceed: 'evict_oldest' },
      { flags: [WEB, PC], max: 2, onExceed: 'reject_new' },
    ]);
    const web = await login(sessions, WEB, 'web');
    const pc = await login(sessions, PC, 'pc');
    await assert.rejects(login(sessions, WEB, 'refused'), (error) => assertSessionLimit(error, { flags: [WEB, PC], max: 2 }));
    assert.deepEqual(await live(sessions, web, pc), [true, true], 'a refused login evicted a session');
    await sessions.logout(pc.session);
    const web2 = await login(sessions, WEB, 'web2');
    assert.deepEqual(await live(sessions, web, web2), [false, true]);
    assert.equal((await sessions.whyEnded(web.token))?.reason, 'cap');
  });

  it('parallel logins never leave more than max live sessions of a group', async () => {
    for (const onExceed of ['evict_oldest', 'reject_new'] as const) {
      const kv = new MemoryKv();
      const sessions = service(kv, [{ flags: [WEB, PC], max: 2, onExceed }]);
      const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => login(sessions, i % 2 === 0 ? WEB : PC, `d${i}`)));
      const issued = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const alive = (await live(sessions, ...issued)).filter(Boolean).length;
      assert.ok(alive <= 2 && alive >= 1, `${onExceed}: ${alive} live sessions`);
      for (const r of results) if (r.status === 'rejected') assertSessionLimit(r.reason, { flags: [WEB, PC], max: 2 });
    }
  });
});

describe('session limits: the bounded retry loop', () => {
  it('a login that loses every write of the group slot answers 503 upstream_unavailable and is undone', async () => {
    const kv = new MemoryKv();
    const sessions = service(kv, [{ flags: [WEB], max: 2, onExceed: 'evict_oldest' }]);
    const web1 = await login(sessions, WEB, 'web1');
    // Another writer always gets in first: every compare-and-set of the group slot fails.
    const contended = new Proxy(kv, {
      get(target, property) {
        if (property === 'compareAndSet') {
          return async (key: string, ...rest: [string, string, object?]) => (key.includes(':limit:') ? false : target.compareAndSet(key, ...rest));
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const losing = service(contended, [{ flags: [WEB], max: 2, onExceed: 'evict_oldest' }]);
    const before = await snapshot(kv);
    await assert.rejects(login(losing, WEB, 'web2'), (error: unknown) => {
      assert.ok(error instanceof LatchkeyError);
      assert.equal(error.code, 'upstream_unavailable');
      assert.equal(error.retryAfter, 1);
      return true;
    });
    const after = await snapshot(kv);
    // The undone login is gone: only its expiry tombstone (written at creation, as for every undone login) stays.
    assert.deepEqual(Object.keys(after).filter((key) => !key.startsWith('ended:')), Object.keys(before).filter((key) => !key.startsWith('ended:')));
    assert.deepEqual(await live(sessions, web1), [true]);
  });
});
