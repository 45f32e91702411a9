/**
 * The one-time code store's rules, one by one, on a clock the test moves (written to kill the
 * Stryker mutants of src/flows/code/code-store.ts fast; the races are in mutant-code-once.test.ts
 * and test/security/codes-guesses.test.ts): six digits, five minutes per code, at most three live
 * codes, five wrong guesses in all, a used code takes the others along, a withdrawn code is gone
 * and only it, and a code verifies only for its own purpose and destination.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { CODE_TTL_MS, CodeStore, codeKey } from '../../src/flows/code/code-store.ts';
import type { Destination } from '../../src/core/destinations.ts';
import type { Random } from '../../src/ports/random.ts';

const to: Destination = { channel: 'email', to: 'owner@example.test' };
const other: Destination = { channel: 'email', to: 'other@example.test' };

function world(codes: readonly number[]) {
  let now = 5_000_000;
  let next = 0;
  let nonce = 0;
  const random: Random = {
    int: (min, max) => {
      assert.deepEqual([min, max], [0, 1_000_000]);
      return codes[next++ % codes.length] ?? 0;
    },
    bytes: (n) => Buffer.alloc(n, ++nonce),
  };
  const clock = { now: () => now };
  const kv = new MemoryKv(clock);
  return { kv, store: new CodeStore(kv, clock, random), advance: (ms: number) => { now += ms; } };
}

describe('one-time code store', () => {
  it('issues six digits, zero-padded, that work for five minutes and then are missing', async () => {
    const w = world([42, 43]);
    const first = await w.store.issue('login', to);
    assert.equal(first.code, '000042');
    w.advance(CODE_TTL_MS - 1);
    assert.equal(await w.store.attempt('login', to, '000042'), 'ok');
    const second = await w.store.issue('login', to);
    w.advance(CODE_TTL_MS);
    assert.equal(await w.kv.get(codeKey('login', to)), null, 'the first code\'s record had no TTL');
    assert.equal(await w.store.attempt('login', to, second.code), 'missing');
  });

  it('each code keeps its own five minutes, whatever was sent after it', async () => {
    const w = world([111111, 222222]);
    await w.store.issue('login', to);
    w.advance(4 * 60_000);
    await w.store.issue('login', to);
    w.advance(60_000 + 1);
    assert.equal(await w.store.attempt('login', to, '111111'), 'wrong', 'an expired code still verified');
    assert.equal(await w.store.attempt('login', to, '222222'), 'ok');
  });

  it('keeps the three newest codes live; a used one takes the others with it', async () => {
    const w = world([100001, 100002, 100003, 100004]);
    for (let i = 0; i < 4; i++) await w.store.issue('login', to);
    assert.equal(await w.store.attempt('login', to, '100001'), 'wrong', 'the oldest of four codes still works');
    assert.equal(await w.store.attempt('login', to, '100002'), 'ok');
    assert.equal(await w.store.attempt('login', to, '100003'), 'missing');
    assert.equal(await w.kv.get(codeKey('login', to)), null);
  });

  it('allows five wrong guesses in all, across resends; the fifth burns every code', async () => {
    const w = world([123456, 654321]);
    await w.store.issue('login', to);
    for (let i = 0; i < 3; i++) assert.equal(await w.store.attempt('login', to, '000000'), 'wrong');
    await w.store.issue('login', to);
    assert.equal(await w.store.attempt('login', to, '000000'), 'wrong');
    const stored = JSON.parse((await w.kv.get(codeKey('login', to))) ?? '{}') as { t?: number };
    assert.equal(stored.t, 4, 'a resend reset the try count');
    assert.equal(await w.store.attempt('login', to, '000000'), 'wrong');
    assert.equal(await w.store.attempt('login', to, '654321'), 'missing', 'a code worked after five wrong guesses');
  });

  it('four wrong guesses leave the right code working', async () => {
    const w = world([777777]);
    await w.store.issue('login', to);
    for (let i = 0; i < 4; i++) await w.store.attempt('login', to, '000001');
    assert.equal(await w.store.attempt('login', to, '777777'), 'ok');
  });

  it('withdraws exactly the code named, and the record with its last code', async () => {
    const w = world([300001, 300002]);
    const a = await w.store.issue('login', to);
    const b = await w.store.issue('login', to);
    await w.store.withdraw('login', to, 'no-such-nonce');
    await w.store.withdraw('login', to, a.nonce);
    assert.equal(await w.store.attempt('login', to, a.code), 'wrong', 'the withdrawn code still verified');
    await w.store.withdraw('login', to, b.nonce);
    assert.equal(await w.kv.get(codeKey('login', to)), null);
    await w.store.withdraw('login', to, b.nonce);
  });

  it('a withdrawal keeps the try count and the other code', async () => {
    const w = world([400001, 400002]);
    const a = await w.store.issue('login', to);
    await w.store.issue('login', to);
    await w.store.attempt('login', to, '000000');
    await w.store.withdraw('login', to, a.nonce);
    const stored = JSON.parse((await w.kv.get(codeKey('login', to))) ?? '{}') as { t?: number; c?: unknown[] };
    assert.equal(stored.t, 1);
    assert.equal(stored.c?.length, 1);
    assert.equal(await w.store.attempt('login', to, '400002'), 'ok');
  });

  it('verifies a code only for its own purpose and destination, even if its record is copied', async () => {
    const w = world([500005]);
    await w.store.issue('login', to);
    const raw = await w.kv.get(codeKey('login', to));
    assert.ok(raw);
    await w.kv.set(codeKey('login', other), raw);
    await w.kv.set(codeKey('register', to), raw);
    assert.equal(await w.store.attempt('login', other, '500005'), 'wrong');
    assert.equal(await w.store.attempt('register', to, '500005'), 'wrong');
    assert.equal(await w.store.attempt('verify', to, '500005'), 'missing');
    assert.equal(await w.store.attempt('login', to, '500005'), 'ok');
  });

  it('treats an unreadable record as no code, and removes it', async () => {
    const w = world([1]);
    for (const corrupt of ['not json', '{"c":[{"n":1}],"t":0}', '{"c":"x","t":0}', '{"c":[],"t":"0"}', '{"c":[null],"t":0}']) {
      await w.kv.set(codeKey('login', to), corrupt);
      assert.equal(await w.store.attempt('login', to, '000001'), 'missing', corrupt);
      assert.equal(await w.kv.get(codeKey('login', to)), null, corrupt);
    }
    await w.kv.set(codeKey('login', to), 'not json');
    const issued = await w.store.issue('login', to);
    assert.equal(await w.store.attempt('login', to, issued.code), 'ok', 'a corrupt record blocked a new code');
  });

  it('never keeps a key past the newest code\'s five minutes, whatever changed it', async () => {
    const w = world([600001, 600002]);
    const a = await w.store.issue('login', to);
    await w.store.issue('login', to);
    w.advance(60_000);
    await w.store.attempt('login', to, '000000');
    await w.store.withdraw('login', to, a.nonce);
    w.advance(CODE_TTL_MS - 60_000);
    assert.equal(await w.kv.get(codeKey('login', to)), null, 'the code record outlived its codes');
  });

  it('answers a record with a malformed code (bad nonce or hash, valid expiry) as no code, never by throwing', async () => {
    const w = world([1]);
    const x = 5_000_000 + CODE_TTL_MS;
    for (const code of [{ n: 1, h: 'AAAA', x }, { n: 'n', h: 2, x }, { n: 'n', h: 'AAAA', x: String(x) }]) {
      await w.kv.set(codeKey('login', to), JSON.stringify({ c: [code], t: 0 }));
      assert.equal(await w.store.attempt('login', to, '000001'), 'missing', JSON.stringify(code));
    }
    await w.kv.set(codeKey('login', to), JSON.stringify({ c: [{ n: 'n', h: 'AAAA', x }], t: 0 }));
    assert.equal(await w.store.attempt('login', to, '000001'), 'wrong', 'a short hash was not a plain mismatch');
    await w.kv.set(codeKey('login', to), JSON.stringify({ c: [{ n: 'n', h: 'AAAA', x }], t: 'x' }));
    assert.equal(await w.store.attempt('login', to, '000001'), 'missing', 'a record without a try count was used');
  });
});
