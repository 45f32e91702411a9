/**
 * The explorer's reduction (sleep sets): it must visit every state the full search visits — so the
 * invariants, checked at every state, see all of them — while running fewer orders, and still find
 * a race.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import type { Kv } from '../../src/ports/kv.ts';
import { explore, type Invariant, type Protocol } from './scheduler.ts';

const fresh = async () => {
  const store = new MemoryKv({ now: () => 0 });
  return { world: store, store };
};

/** Some calls conflict (x, y), some touch keys no one else does, one protocol has two in flight. */
const protocols: Record<string, Protocol<MemoryKv>> = {
  a: async (kv: Kv) => {
    await kv.set('x', 'a');
    await kv.set('y', (await kv.get('y')) ?? 'a-saw-none');
    await Promise.all([kv.set('a1', '1'), kv.hset('h', 'a', '1')]);
  },
  b: async (kv: Kv) => {
    await kv.set('y', `b-saw-${(await kv.get('x')) ?? 'none'}`);
    await kv.hset('h', 'b', '1');
  },
  c: async (kv: Kv) => {
    await kv.set('z', (await kv.hgetall('h')).a ?? 'none');
  },
};

async function visitedStates(reduction: boolean): Promise<{ states: Set<string>; finals: Set<string>; runs: number }> {
  const states = new Set<string>();
  const finals = new Set<string>();
  const record: Invariant<MemoryKv> = async ({ world, final, returned }) => {
    const keys = world.keys().sort();
    // A hash's content, not the order its fields were written in: hsets of different fields commute.
    const hash = async (key: string) => JSON.stringify(Object.entries(await world.hgetall(key)).sort());
    const values = await Promise.all(keys.map(async (key) => (key === 'h' ? hash(key) : world.get(key))));
    const state = JSON.stringify([keys.map((key, i) => [key, values[i]]), ['a', 'b', 'c'].map(returned)]);
    states.add(state);
    if (final) finals.add(state);
    return null;
  };
  const result = await explore({ setup: fresh, protocols, invariants: [record], maxRuns: 100_000, ...(reduction ? { reduction: 'sleep-sets' as const } : {}) });
  assert.equal(result.exhausted, true);
  return { states, finals, runs: result.interleavings };
}

describe('the explorer\'s reduction', () => {
  it('visits every state of the full search, in fewer orders', async (t) => {
    const full = await visitedStates(false);
    const reduced = await visitedStates(true);
    t.diagnostic(`${full.runs} orders, ${full.states.size} states; reduced: ${reduced.runs} orders`);
    assert.deepEqual([...reduced.states].sort(), [...full.states].sort());
    assert.deepEqual([...reduced.finals].sort(), [...full.finals].sort());
    assert.ok(reduced.runs < full.runs / 4, `${reduced.runs} of ${full.runs}`);
  });

  it('still finds a lost update', async () => {
    const increment: Protocol<MemoryKv> = async (kv) => {
      await kv.set('n', String(Number((await kv.get('n')) ?? 0) + 1));
    };
    const result = await explore({
      setup: fresh,
      protocols: { first: increment, second: increment },
      invariants: [async ({ world, final }) => (final && (await world.get('n')) !== '2' ? `n is ${await world.get('n')}` : null)],
      maxRuns: 100,
      reduction: 'sleep-sets',
    });
    assert.equal(result.violation?.message, 'n is 1');
  });
});
