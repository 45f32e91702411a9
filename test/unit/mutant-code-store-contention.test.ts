/**
 * The one-time code store when its compares lose, and what each operation costs the store: written
 * to kill the Stryker mutants of src/flows/code/code-store.ts that the rules in
 * mutant-code-store.test.ts leave alive (retry bounds, lost writes, a withdrawal's guards, the
 * exact expiry instant, a record with one good and one bad entry).
 *
 * A lost compare stands for another node changing the key between this node's read and its write
 * (a send, a counted guess, a withdrawal); the store cannot tell the difference, so the fake
 * answers "changed" without writing, the given number of times.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { CODE_TTL_MS, CodeStore, codeKey } from '../../src/flows/code/code-store.ts';
import type { Destination } from '../../src/core/destinations.ts';
import type { Kv } from '../../src/ports/kv.ts';
import type { Random } from '../../src/ports/random.ts';
import { readsMeetingAt } from '../mutation/meeting-kv.ts';

const to: Destination = { channel: 'email', to: 'owner@example.test' };
const key = codeKey('login', to);
/** 8 × (five wrong guesses + 1): every lost compare is one of the changes a record can see. */
const ROUNDS = 48;
const WRITES = new Set(['set', 'compareAndSet', 'compareAndDelete']);

function world(codes: readonly number[]) {
  let now = 5_000_000;
  let next = 0;
  let nonce = 0;
  const random: Random = {
    int: () => codes[next++ % codes.length] ?? 0,
    bytes: (n) => Buffer.alloc(n, ++nonce),
  };
  const clock = { now: () => now };
  const memory = new MemoryKv(clock);
  const ops: string[] = [];
  let losing = 0;
  const kv = new Proxy(memory, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      const name = String(prop);
      return (...args: unknown[]) => {
        ops.push(name);
        if (WRITES.has(name) && losing > 0) {
          losing -= 1;
          return Promise.resolve(false);
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as Kv;
  return {
    memory,
    ops,
    store: new CodeStore(kv, clock, random),
    /** The next `count` writes lose their compare. */
    lose: (count: number) => { losing = count; },
    reads: () => ops.filter((op) => op === 'get').length,
    clear: () => { ops.length = 0; },
    advance: (ms: number) => { now += ms; },
    record: async () => JSON.parse((await memory.get(key)) ?? 'null') as { c: Array<{ n: string }>; t: number } | null,
  };
}

describe('one-time code store under contention', () => {
  it('a send keeps trying through 47 lost compares, and its code is then stored', async () => {
    const w = world([111111]);
    w.lose(ROUNDS - 1);
    const issued = await w.store.issue('login', to);
    assert.equal(w.reads(), ROUNDS, 'the send gave up (or claimed success) before its code was stored');
    assert.equal(await w.store.attempt('login', to, issued.code), 'ok', 'a send whose write lost answered as sent');
  });

  it('a send that loses every compare gives up after 48 reads with "could not be stored", storing nothing', async () => {
    const w = world([111111]);
    w.lose(ROUNDS);
    await assert.rejects(w.store.issue('login', to), {
      name: 'LatchkeyError',
      code: 'upstream_unavailable',
      message: 'the code could not be stored; try again shortly',
    });
    assert.equal(w.reads(), ROUNDS);
    assert.equal(await w.memory.get(key), null);
  });

  it('a wrong guess whose count lost the compare is counted before it is answered', async () => {
    const w = world([222222]);
    await w.store.issue('login', to);
    w.lose(1);
    assert.equal(await w.store.attempt('login', to, '000000'), 'wrong');
    assert.equal((await w.record())?.t, 1, 'a wrong guess was answered without being counted');
  });

  it('a guess that loses every compare fails closed after 48 reads, right or wrong, counting nothing', async () => {
    const w = world([333333]);
    const issued = await w.store.issue('login', to);
    for (const guess of ['000000', issued.code]) {
      w.clear();
      w.lose(ROUNDS);
      assert.equal(await w.store.attempt('login', to, guess), 'wrong', guess);
      assert.equal(w.reads(), ROUNDS, guess);
    }
    assert.equal((await w.record())?.t, 0);
    assert.equal(await w.store.attempt('login', to, issued.code), 'ok', 'the contended guesses consumed the code');
  });

  it('a withdrawal whose write lost tries again until the code is gone', async () => {
    const w = world([444441, 444442]);
    const a = await w.store.issue('login', to);
    await w.store.issue('login', to);
    w.lose(ROUNDS - 1);
    await w.store.withdraw('login', to, a.nonce);
    assert.equal(w.reads() - 2, ROUNDS, 'the withdrawal stopped early');
    assert.deepEqual((await w.record())?.c.map((c) => c.n), [Buffer.alloc(16, 2).toString('base64url')], 'the withdrawn code is still stored');
  });

  it('a withdrawal that loses every compare stops after 48 reads', async () => {
    const w = world([555555]);
    const a = await w.store.issue('login', to);
    w.clear();
    w.lose(ROUNDS);
    await w.store.withdraw('login', to, a.nonce);
    assert.equal(w.reads(), ROUNDS);
  });

  it('costs one read when there is nothing to do, and one read and one write otherwise', async () => {
    const w = world([666661, 666662]);
    const cost = async (run: () => Promise<unknown>) => { w.clear(); await run(); return [...w.ops]; };
    assert.deepEqual(await cost(() => w.store.withdraw('login', to, 'gone')), ['get'], 'withdraw with no record');
    assert.deepEqual(await cost(() => w.store.attempt('login', to, '000000')), ['get'], 'guess with no record');
    const a = await w.store.issue('login', to);
    await w.store.issue('login', to);
    assert.deepEqual(await cost(() => w.store.withdraw('login', to, 'not-a-nonce')), ['get'], 'withdraw of a code not there wrote');
    assert.deepEqual(await cost(() => w.store.withdraw('login', to, a.nonce)), ['get', 'compareAndSet']);
    const b = (await w.record())?.c[0]?.n ?? '';
    assert.deepEqual(await cost(() => w.store.withdraw('login', to, b)), ['get', 'compareAndDelete']);
    assert.equal(await w.memory.get(key), null);
  });

  it('a withdrawal from an unreadable record removes it rather than throwing', async () => {
    const w = world([1]);
    for (const corrupt of ['not json', '{"c":[{"n":1}],"t":0}']) {
      await w.memory.set(key, corrupt);
      await w.store.withdraw('login', to, 'any');
      assert.equal(await w.memory.get(key), null, corrupt);
    }
  });

  it('two sends that both saw no record both keep their code', async () => {
    const w = world([700001, 700002]);
    const { kv, arm } = readsMeetingAt(w.memory, key);
    const clock = { now: () => 5_000_000 };
    let nonce = 0;
    const store = new CodeStore(kv, clock, { int: () => 700_000 + nonce, bytes: (n) => Buffer.alloc(n, ++nonce) });
    arm(2);
    const issued = await Promise.all([store.issue('login', to), store.issue('login', to)]);
    const stored = (await w.record())?.c.map((c) => c.n).sort();
    assert.deepEqual(stored, issued.map((i) => i.nonce).sort(), 'one send overwrote the other\'s code');
  });

  it('a code is dead at its expiry instant, while a later code keeps the record alive', async () => {
    const w = world([800001, 800002]);
    await w.store.issue('login', to);
    w.advance(60_000);
    await w.store.issue('login', to);
    w.advance(CODE_TTL_MS - 60_000);
    assert.equal(await w.store.attempt('login', to, '800001'), 'wrong', 'a code verified at its expiry instant');
    assert.equal(await w.store.attempt('login', to, '800002'), 'ok');
  });

  it('a record whose codes all expired is missing, even while its key lives on', async () => {
    const w = world([900001, 900002]);
    await w.store.issue('login', to);
    w.advance(60_000);
    const b = await w.store.issue('login', to);
    await w.store.withdraw('login', to, b.nonce); // keeps the key's TTL: the newest code's expiry
    w.advance(CODE_TTL_MS - 60_000 + 1);
    assert.notEqual(await w.memory.get(key), null);
    assert.equal(await w.store.attempt('login', to, '900001'), 'missing', 'an expired record counted a guess');
    assert.equal(await w.memory.get(key), null);
  });

  it('a record with one good and one malformed code is no code at all', async () => {
    const w = world([1]);
    const good = await w.store.issue('login', to);
    const record = await w.record();
    assert.ok(record);
    await w.memory.set(key, JSON.stringify({ ...record, c: [...record.c, { n: 1, h: 'AAAA', x: 5_000_000 + CODE_TTL_MS }] }));
    assert.equal(await w.store.attempt('login', to, good.code), 'missing');
    assert.equal(await w.memory.get(key), null);
  });
});
