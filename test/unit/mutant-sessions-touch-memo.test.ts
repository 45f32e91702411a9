/**
 * The memo of when this node last wrote each session's last-seen stamp is bounded: past 100 000
 * sessions it is cleared (a node must not grow without bound under many sessions), and not
 * before. Kept apart from mutant-sessions-service.test.ts: its 100 000 validations take seconds.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { SessionService } from '../../src/core/sessions/service.ts';
import { defaultDevicePolicies } from '../../src/core/sessions/policy.ts';
import { cryptoRandom } from '../../src/ports/random.ts';

const UID = 'u1';
const TTL = 3_600_000;
const T0 = Date.now();

/** Lets fire-and-forget writes (the last-seen touch) land. */
const settle = async () => {
  for (let i = 0; i < 10; i += 1) await new Promise((resolve) => setImmediate(resolve));
};

describe('the memo of last-seen writes', () => {
  it('is cleared past 100 000 sessions, and only then', async () => {
    // A store where every sid names a live session: the memo fills without issuing 100 000 logins.
    const inner = new MemoryKv();
    const record = JSON.stringify({ uid: UID, device_flag: 1, created_at: T0, expires_at: T0 + TTL });
    const writes = new Map<string, number>();
    const kv = new Proxy(inner, {
      get(target, property) {
        if (property === 'get') return async (key: string) => (key.startsWith('sess:') ? record : null);
        if (property === 'set') return async (key: string) => (writes.set(key, (writes.get(key) ?? 0) + 1), true);
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const sessions = new SessionService({
      kv, clock: { now: () => T0 }, random: cryptoRandom, policies: defaultDevicePolicies, ttlMs: TTL, accountStatus: async () => 'active',
    });
    const token = (i: number) => `t${String(i).padStart(42, '0')}`;
    const seenOf = async (t: string) => `seen:${(await sessions.validate(t))?.sid}`;
    const first = await seenOf(token(0));
    await sessions.validate(token(0));
    await settle();
    assert.equal(writes.get(first), 1, 'within the interval: one write');
    for (let i = 1; i < 100_000; i += 1) await sessions.validate(token(i));
    // 100 000 remembered: the next new session clears the memo, so the first is written again.
    await sessions.validate(token(0));
    await settle();
    assert.equal(writes.get(first), 1, 'at 100 000 remembered, nothing is forgotten yet');
    await sessions.validate(token(100_000));
    await sessions.validate(token(0));
    await settle();
    assert.equal(writes.get(first), 2, 'cleared past 100 000');
  });
});
