/**
 * Found by `npm run soak` (docs/deploy.md): a last-seen write that a logout overtakes must not
 * leave a `seen:<sid>` key behind for the rest of the session's lifetime — Kv keys must not grow
 * beyond the live sessions.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import type { Kv } from '../../src/ports/kv.ts';
import { cryptoRandom } from '../../src/ports/random.ts';
import { systemClock } from '../../src/ports/clock.ts';
import { defaultDevicePolicies } from '../../src/core/sessions/policy.ts';
import { SessionService } from '../../src/core/sessions/service.ts';

/** Holds every write of a `seen:` key until release(): the touch's SET arrives late. */
function slowLastSeen(inner: MemoryKv): { kv: Kv; release: () => Promise<void> } {
  const held: (() => void)[] = [];
  const kv = new Proxy(inner, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      const method = (...args: unknown[]) => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      if (property !== 'set') return method;
      return (...args: unknown[]) => {
        if (!String(args[0]).startsWith('seen:')) return method(...args);
        return new Promise((resolve) => held.push(() => resolve(method(...args))));
      };
    },
  });
  return {
    kv,
    release: async () => {
      for (const write of held.splice(0)) write();
      // Let the touch's follow-up calls run.
      for (let i = 0; i < 10; i += 1) await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

/** A Web session on a store whose last-seen writes wait until release(). */
async function webSessionWithSlowLastSeen() {
  const memory = new MemoryKv();
  const { kv, release } = slowLastSeen(memory);
  const sessions = new SessionService({
    kv, clock: systemClock, random: cryptoRandom, policies: defaultDevicePolicies, ttlMs: 3_600_000,
    accountStatus: async () => 'active',
  });
  const { token, session } = await sessions.issue({
    uid: 'u1', flag: 1, device: { device_id: '', device_name: '', device_model: '' }, method: 'password', ip: '127.0.0.1', userAgent: 't',
  });
  return { memory, release, sessions, token, session };
}

describe('last-seen writes', () => {
  it('a last-seen write that lands after the logout leaves no key behind', async () => {
    const { memory, release, sessions, token, session } = await webSessionWithSlowLastSeen();
    assert.ok(await sessions.validate(token));
    assert.equal(await sessions.logout(session), true);
    await release();
    assert.deepEqual(memory.keys().filter((key) => key.startsWith('seen:')), []);
  });

  it('the write still lands for a live session', async () => {
    const { memory, release, sessions, token, session } = await webSessionWithSlowLastSeen();
    await sessions.validate(token);
    await release();
    assert.deepEqual(memory.keys().filter((key) => key.startsWith('seen:')), [`seen:${session.sid}`]);
  });
});
