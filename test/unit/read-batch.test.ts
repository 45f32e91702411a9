import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReadBatch } from '../../src/adapters/read-batch.ts';

const store = new Map([['a', '1'], ['b', '2']]);

describe('read batch', () => {
  it('reads the keys asked for in one event-loop turn with one call, each getting its own value', async () => {
    const calls: string[][] = [];
    const batch = new ReadBatch((keys) => {
      calls.push([...keys]);
      return keys.map((key) => store.get(key) ?? null);
    });
    const values = await Promise.all([batch.get('a'), batch.get('missing'), batch.get('b'), batch.get('a')]);
    assert.deepEqual(values, ['1', null, '2', '1']);
    assert.deepEqual(calls, [['a', 'missing', 'b', 'a']]);
  });

  it('reads the store after the call, never a value from an earlier batch', async () => {
    const live = new Map([['k', 'old']]);
    let calls = 0;
    const batch = new ReadBatch((keys) => {
      calls += 1;
      return keys.map((key) => live.get(key) ?? null);
    });
    assert.equal(await batch.get('k'), 'old');
    const pending = batch.get('k');
    // A write that lands after the call and before the turn ends is seen: the read is no earlier than the call.
    live.delete('k');
    assert.equal(await pending, null);
    assert.equal(await batch.get('k'), null);
    assert.equal(calls, 3);
  });

  it('rejects every read of a batch whose store call fails, thrown or rejected, and recovers after', async () => {
    let failure: 'throw' | 'reject' | null = 'throw';
    const batch = new ReadBatch(async (keys) => {
      if (failure === 'reject') throw new Error('store down');
      return keys.map((key) => store.get(key) ?? null);
    });
    const throwing = new ReadBatch((keys) => {
      if (failure === 'throw') throw new Error('store down');
      return keys.map(() => null);
    });
    const thrown = await Promise.allSettled([throwing.get('a'), throwing.get('b')]);
    assert.deepEqual(thrown.map((r) => r.status), ['rejected', 'rejected']);
    failure = 'reject';
    const rejected = await Promise.allSettled([batch.get('a'), batch.get('b')]);
    assert.deepEqual(rejected.map((r) => r.status), ['rejected', 'rejected']);
    failure = null;
    assert.equal(await batch.get('b'), '2');
  });
});
