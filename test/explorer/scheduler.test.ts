/**
 * The explorer itself: it must enumerate exactly every interleaving (counted by hand here), follow
 * concurrent calls of one protocol, find a race when there is one, and refuse a space too large.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import type { Kv } from '../../src/ports/kv.ts';
import { explore, type Protocol } from './scheduler.ts';

const fresh = async () => {
  const store = new MemoryKv({ now: () => 0 });
  return { world: store, store };
};
const writes = (...keys: string[]): Protocol<MemoryKv> => async (kv) => {
  for (const key of keys) await kv.set(key, 'x');
};
/** A read-modify-write increment: two of them can lose an update. */
const increment: Protocol<MemoryKv> = async (kv: Kv) => {
  await kv.set('n', String(Number((await kv.get('n')) ?? 0) + 1));
};

describe('interleaving explorer', () => {
  it('enumerates every interleaving of two sequential protocols: C(5,2) = 10', async () => {
    const result = await explore({ setup: fresh, protocols: { a: writes('a1', 'a2', 'a3'), b: writes('b1', 'b2') }, invariants: [], maxRuns: 100 });
    assert.deepEqual(result, { interleavings: 10, exhausted: true, violation: null });
  });

  it('treats calls a protocol has in flight at once (Promise.all) as separate choices', async () => {
    // a: {a1, a2} in any order, then a3; b: b1 anywhere among those three: 2 orders x 4 places.
    const parallel: Protocol<MemoryKv> = async (kv) => {
      await Promise.all([kv.set('a1', 'x'), kv.set('a2', 'x')]);
      await kv.set('a3', 'x');
    };
    const result = await explore({ setup: fresh, protocols: { a: parallel, b: writes('b1') }, invariants: [], maxRuns: 100 });
    assert.deepEqual(result, { interleavings: 8, exhausted: true, violation: null });
  });

  it('finds a lost update and reports the interleaving that loses it', async () => {
    const result = await explore({
      setup: fresh,
      protocols: { first: increment, second: increment },
      invariants: [async ({ world, final }) => (final && (await world.get('n')) !== '2' ? `n is ${await world.get('n')}` : null)],
      maxRuns: 100,
    });
    assert.equal(result.violation?.message, 'n is 1');
    assert.deepEqual(result.violation?.interleaving, ['first: get n', 'second: get n', 'first: set n 1', 'second: set n 1']);
  });

  it('refuses to truncate a space larger than maxRuns', async () => {
    await assert.rejects(
      explore({ setup: fresh, protocols: { a: writes('a1', 'a2', 'a3'), b: writes('b1', 'b2') }, invariants: [], maxRuns: 9 }),
      /larger than maxRuns=9/,
    );
  });
});
