/**
 * Kv conformance (docs/design.md §2): one suite body, run against every Kv adapter. Adapters with an
 * injectable clock get a manual one, so TTL tests jump in time; Redis gets short real TTLs.
 * Each adapter has one store for its whole suite, so every test uses keys of its own.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { RedisKv } from '../../src/adapters/redis/redis-kv.ts';
import { SqliteKv } from '../../src/adapters/sqlite/sqlite-kv.ts';
import type { Clock } from '../../src/ports/clock.ts';
import { StoreUnavailableError } from '../../src/ports/errors.ts';
import type { Kv } from '../../src/ports/kv.ts';
import { REDIS_URL, skipUnless, uniquePrefix } from '../support/services.ts';
import { skipUnlessRedisServer } from '../support/processes.ts';
import { startRedisCluster, type RedisCluster } from '../../scripts/redis-cluster.ts';

/** A TTL that is still running during a test step, even on a slow machine with a real Redis. */
const SHORT = 100;
/** A TTL that does not run out during any test. */
const LONG = 600_000;

interface Harness {
  readonly kv: Kv;
  /** Lets `ms` pass as far as TTLs are concerned. */
  elapse(ms: number): Promise<void>;
  close(): Promise<void>;
}

class ManualClock implements Clock {
  #now = 1_700_000_000_000;
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
}

let counter = 0;
function key(label: string): string {
  counter += 1;
  return `${label}:${counter}`;
}

/**
 * Waits for a message to arrive. Only arrivals are waited for (a message that must not arrive is
 * fenced by one that must), so the deadline only bounds a hang: 2 s was within reach of one stall
 * of a loaded 2-core machine.
 */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function assertTtlWithin(ttl: number | null, max: number): void {
  assert.ok(ttl !== null && ttl > 0 && ttl <= max, `expected a TTL in (0, ${max}], got ${ttl}`);
}

function kvConformance(open: () => Promise<Harness>): void {
  let harness: Harness;
  let kv: Kv;
  const expire = (ms: number) => harness.elapse(ms);

  before(async () => {
    harness = await open();
    kv = harness.kv;
  });
  after(() => harness.close());

  describe('strings', () => {
    it('get returns null for a missing key', async () => {
      assert.equal(await kv.get(key('missing')), null);
    });

    it('gets made together (one store read per event-loop turn) each answer their own key, at any count', async () => {
      for (const count of [1, 3, 64, 65, 200]) {
        const keys = Array.from({ length: count }, (_, i) => key(`many-${count}-${i}`));
        // Every third key is missing; the last key is asked twice.
        await Promise.all(keys.map((k, i) => (i % 3 === 0 ? Promise.resolve() : kv.set(k, `v${i}`))));
        const asked = [...keys, keys[count - 1] ?? ''];
        const values = await Promise.all(asked.map((k) => kv.get(k)));
        assert.deepEqual(values, asked.map((_, i) => {
          const index = i === count ? count - 1 : i;
          return index % 3 === 0 ? null : `v${index}`;
        }), `${count} keys`);
      }
    });

    it('set writes a value that get reads back, without a TTL', async () => {
      const k = key('plain');
      assert.equal(await kv.set(k, 'v1'), true);
      assert.equal(await kv.get(k), 'v1');
      assert.equal(await kv.pttl(k), -1);
    });

    it('set with ttlMs makes the key invisible to get once the TTL has passed', async () => {
      const k = key('ttl');
      assert.equal(await kv.set(k, 'v', { ttlMs: SHORT }), true);
      assertTtlWithin(await kv.pttl(k), SHORT);
      assert.equal(await kv.get(k), 'v');
      await expire(SHORT + 50);
      assert.equal(await kv.get(k), null);
      assert.equal(await kv.pttl(k), null);
    });

    it('set with nx does not overwrite an existing key', async () => {
      const k = key('nx');
      await kv.set(k, 'first');
      assert.equal(await kv.set(k, 'second', { nx: true }), false);
      assert.equal(await kv.get(k), 'first');
    });

    it('set with nx writes a missing key', async () => {
      const k = key('nx-missing');
      assert.equal(await kv.set(k, 'v', { nx: true, ttlMs: LONG }), true);
      assert.equal(await kv.get(k), 'v');
      assertTtlWithin(await kv.pttl(k), LONG);
    });

    it('set with nx writes over an expired key, with the new TTL only', async () => {
      const k = key('nx-expired');
      await kv.set(k, 'old', { ttlMs: SHORT });
      await expire(SHORT + 50);
      assert.equal(await kv.set(k, 'new', { nx: true }), true);
      assert.equal(await kv.get(k), 'new');
      assert.equal(await kv.pttl(k), -1);
    });

    it('set with xx does not create a missing or expired key', async () => {
      const missing = key('xx-missing');
      assert.equal(await kv.set(missing, 'v', { xx: true }), false);
      assert.equal(await kv.get(missing), null);
      const expired = key('xx-expired');
      await kv.set(expired, 'old', { ttlMs: SHORT });
      await expire(SHORT + 50);
      assert.equal(await kv.set(expired, 'new', { xx: true }), false);
      assert.equal(await kv.get(expired), null);
    });

    it('set with xx overwrites an existing key and sets the given TTL', async () => {
      const k = key('xx');
      await kv.set(k, 'old');
      assert.equal(await kv.set(k, 'new', { xx: true, ttlMs: LONG }), true);
      assert.equal(await kv.get(k), 'new');
      assertTtlWithin(await kv.pttl(k), LONG);
    });

    it('set with keepTtl keeps the remaining TTL, with or without xx', async () => {
      const k = key('keepttl');
      await kv.set(k, 'v1', { ttlMs: LONG });
      assert.equal(await kv.set(k, 'v2', { keepTtl: true }), true);
      assertTtlWithin(await kv.pttl(k), LONG);
      assert.equal(await kv.set(k, 'v3', { xx: true, keepTtl: true }), true);
      assert.equal(await kv.get(k), 'v3');
      assertTtlWithin(await kv.pttl(k), LONG);
    });

    it('set with keepTtl on a missing key writes it without a TTL', async () => {
      const k = key('keepttl-missing');
      assert.equal(await kv.set(k, 'v', { keepTtl: true }), true);
      assert.equal(await kv.pttl(k), -1);
    });

    it('set without ttlMs or keepTtl removes a previous TTL', async () => {
      const k = key('persist');
      await kv.set(k, 'v1', { ttlMs: SHORT });
      await kv.set(k, 'v2');
      assert.equal(await kv.pttl(k), -1);
      await expire(SHORT + 50);
      assert.equal(await kv.get(k), 'v2');
    });

    it('set rejects contradictory options and TTLs that are not positive integers', async () => {
      const k = key('bad-options');
      await assert.rejects(kv.set(k, 'v', { nx: true, xx: true }), RangeError);
      await assert.rejects(kv.set(k, 'v', { keepTtl: true, ttlMs: 10 }), RangeError);
      await assert.rejects(kv.set(k, 'v', { ttlMs: 0 }), RangeError);
      await assert.rejects(kv.set(k, 'v', { ttlMs: 1.5 }), RangeError);
      assert.equal(await kv.get(k), null);
    });

    it('del removes a key and says whether it existed', async () => {
      const k = key('del');
      await kv.set(k, 'v');
      assert.equal(await kv.del(k), true);
      assert.equal(await kv.get(k), null);
      assert.equal(await kv.del(k), false);
    });

    it('del of an expired key reports that it did not exist', async () => {
      const k = key('del-expired');
      await kv.set(k, 'v', { ttlMs: SHORT });
      await expire(SHORT + 50);
      assert.equal(await kv.del(k), false);
    });
  });

  describe('swap', () => {
    it('swap returns the previous value and writes the new one', async () => {
      const k = key('swap');
      await kv.set(k, 'old');
      assert.equal(await kv.swap(k, 'new'), 'old');
      assert.equal(await kv.get(k), 'new');
    });

    it('swap on a missing or expired key returns null and writes', async () => {
      const k = key('swap-missing');
      assert.equal(await kv.swap(k, 'v1'), null);
      assert.equal(await kv.get(k), 'v1');
      await kv.set(k, 'v2', { ttlMs: SHORT });
      await expire(SHORT + 50);
      assert.equal(await kv.swap(k, 'v3'), null);
      assert.equal(await kv.get(k), 'v3');
    });

    it('swap sets the given TTL, and without one leaves the key without TTL', async () => {
      const k = key('swap-ttl');
      await kv.swap(k, 'v1', { ttlMs: LONG });
      assertTtlWithin(await kv.pttl(k), LONG);
      await kv.swap(k, 'v2');
      assert.equal(await kv.pttl(k), -1);
    });
  });

  describe('getdel', () => {
    it('getdel returns the value once, then null', async () => {
      const k = key('getdel');
      await kv.set(k, 'once');
      assert.equal(await kv.getdel(k), 'once');
      assert.equal(await kv.getdel(k), null);
      assert.equal(await kv.get(k), null);
    });

    it('getdel of an expired key returns null', async () => {
      const k = key('getdel-expired');
      await kv.set(k, 'v', { ttlMs: SHORT });
      await expire(SHORT + 50);
      assert.equal(await kv.getdel(k), null);
    });

    it('50 concurrent getdel of one key give the value to exactly one caller', async () => {
      const k = key('getdel-race');
      await kv.set(k, 'prize');
      const results = await Promise.all(Array.from({ length: 50 }, () => kv.getdel(k)));
      assert.deepEqual(results.filter((r) => r !== null), ['prize']);
    });
  });

  describe('compare-and-delete / compare-and-set', () => {
    it('compareAndDelete deletes only while the value is the expected one', async () => {
      const k = key('cad');
      await kv.set(k, 'mine');
      assert.equal(await kv.compareAndDelete(k, 'theirs'), false);
      assert.equal(await kv.get(k), 'mine');
      assert.equal(await kv.compareAndDelete(k, 'mine'), true);
      assert.equal(await kv.get(k), null);
      assert.equal(await kv.compareAndDelete(k, 'mine'), false);
    });

    it('compareAndDelete of an expired key returns false', async () => {
      const k = key('cad-expired');
      await kv.set(k, 'mine', { ttlMs: SHORT });
      await expire(SHORT + 50);
      assert.equal(await kv.compareAndDelete(k, 'mine'), false);
    });

    it('compareAndSet replaces only while the value is the expected one', async () => {
      const k = key('cas');
      await kv.set(k, 'v1');
      assert.equal(await kv.compareAndSet(k, 'other', 'v2'), false);
      assert.equal(await kv.get(k), 'v1');
      assert.equal(await kv.compareAndSet(k, 'v1', 'v2'), true);
      assert.equal(await kv.get(k), 'v2');
      assert.equal(await kv.compareAndSet(key('cas-missing'), 'v1', 'v2'), false);
    });

    it('compareAndSet does not resurrect an expired key', async () => {
      const k = key('cas-expired');
      await kv.set(k, 'v1', { ttlMs: SHORT });
      await expire(SHORT + 50);
      assert.equal(await kv.compareAndSet(k, 'v1', 'v2'), false);
      assert.equal(await kv.get(k), null);
    });

    it('compareAndSet sets the given TTL, keeps it with keepTtl, and removes it with neither', async () => {
      const k = key('cas-ttl');
      await kv.set(k, 'v1');
      assert.equal(await kv.compareAndSet(k, 'v1', 'v2', { ttlMs: LONG }), true);
      assertTtlWithin(await kv.pttl(k), LONG);
      assert.equal(await kv.compareAndSet(k, 'v2', 'v3', { keepTtl: true }), true);
      assertTtlWithin(await kv.pttl(k), LONG);
      assert.equal(await kv.compareAndSet(k, 'v3', 'v4'), true);
      assert.equal(await kv.pttl(k), -1);
      assert.equal(await kv.get(k), 'v4');
    });

    it('50 concurrent compareAndSet from the same expected value let exactly one win', async () => {
      const k = key('cas-race');
      await kv.set(k, 'start');
      const wins = await Promise.all(
        Array.from({ length: 50 }, (_, i) => kv.compareAndSet(k, 'start', `writer-${i}`)),
      );
      const winners = wins.flatMap((won, i) => (won ? [i] : []));
      assert.equal(winners.length, 1);
      assert.equal(await kv.get(k), `writer-${winners[0]}`);
    });
  });

  describe('incr', () => {
    it('incr creates the counter at 1 with the TTL', async () => {
      const k = key('incr');
      const first = await kv.incr(k, LONG);
      assert.equal(first.value, 1);
      assertTtlWithin(first.ttlMs, LONG);
      assert.equal(await kv.get(k), '1');
    });

    it('incr sets the TTL only when it creates the key', async () => {
      const k = key('incr-window');
      const first = await kv.incr(k, LONG);
      const second = await kv.incr(k, LONG * 2);
      assert.equal(second.value, 2);
      assert.ok(second.ttlMs <= first.ttlMs, `TTL was re-armed: ${first.ttlMs} -> ${second.ttlMs}`);
      assertTtlWithin(await kv.pttl(k), LONG);
    });

    it('incr starts again at 1 once the counter has expired', async () => {
      const k = key('incr-expired');
      await kv.incr(k, SHORT);
      await kv.incr(k, SHORT);
      await expire(SHORT + 50);
      const restarted = await kv.incr(k, LONG);
      assert.equal(restarted.value, 1);
      assertTtlWithin(restarted.ttlMs, LONG);
    });

    it('incr of a key without TTL leaves it without TTL', async () => {
      const k = key('incr-persistent');
      await kv.set(k, '41');
      assert.deepEqual(await kv.incr(k, LONG), { value: 42, ttlMs: -1 });
      assert.equal(await kv.pttl(k), -1);
    });

    it('incr of a value that is not an integer rejects and leaves it unchanged', async () => {
      const k = key('incr-text');
      await kv.set(k, 'abc');
      await assert.rejects(kv.incr(k, LONG));
      assert.equal(await kv.get(k), 'abc');
    });
  });

  describe('expire and pttl', () => {
    it('pttl is null for a missing key, -1 without TTL, and the remaining ms with one', async () => {
      const k = key('pttl');
      assert.equal(await kv.pttl(k), null);
      await kv.set(k, 'v');
      assert.equal(await kv.pttl(k), -1);
      await kv.set(k, 'v', { ttlMs: LONG });
      assertTtlWithin(await kv.pttl(k), LONG);
    });

    it('expire sets a TTL on an existing key, after which the key is gone', async () => {
      const k = key('expire');
      await kv.set(k, 'v');
      assert.equal(await kv.expire(k, SHORT), true);
      assertTtlWithin(await kv.pttl(k), SHORT);
      await expire(SHORT + 50);
      assert.equal(await kv.get(k), null);
    });

    it('expire shortens a TTL in the default mode', async () => {
      const k = key('expire-shorten');
      await kv.set(k, 'v', { ttlMs: LONG });
      assert.equal(await kv.expire(k, LONG / 10), true);
      assertTtlWithin(await kv.pttl(k), LONG / 10);
    });

    it('expire of a missing or expired key returns false and creates nothing', async () => {
      const k = key('expire-missing');
      assert.equal(await kv.expire(k, LONG), false);
      await kv.set(k, 'v', { ttlMs: SHORT });
      await expire(SHORT + 50);
      assert.equal(await kv.expire(k, LONG), false);
      assert.equal(await kv.get(k), null);
    });

    it("expire 'gt' lengthens a TTL but never shortens it", async () => {
      const k = key('expire-gt');
      await kv.set(k, 'v', { ttlMs: LONG });
      assert.equal(await kv.expire(k, LONG * 2, 'gt'), true);
      const lengthened = await kv.pttl(k);
      assert.ok(lengthened !== null && lengthened > LONG, `not lengthened: ${lengthened}`);
      assert.equal(await kv.expire(k, LONG / 2, 'gt'), false);
      const kept = await kv.pttl(k);
      assert.ok(kept !== null && kept > LONG, `shortened: ${kept}`);
    });

    it("expire 'gt' does not put a TTL on a key that has none", async () => {
      const k = key('expire-gt-persistent');
      await kv.set(k, 'v');
      assert.equal(await kv.expire(k, LONG, 'gt'), false);
      assert.equal(await kv.pttl(k), -1);
    });

    it('expire rejects a TTL that is not a positive integer', async () => {
      const k = key('expire-bad');
      await kv.set(k, 'v');
      await assert.rejects(kv.expire(k, 0), RangeError);
      assert.equal(await kv.pttl(k), -1);
    });
  });

  describe('hashes', () => {
    it('hset writes fields that hget and hgetall read back', async () => {
      const k = key('hash');
      await kv.hset(k, 'a', '1');
      await kv.hset(k, 'b', '2');
      await kv.hset(k, 'a', '3');
      assert.equal(await kv.hget(k, 'a'), '3');
      assert.equal(await kv.hget(k, 'missing'), null);
      assert.deepEqual(await kv.hgetall(k), { a: '3', b: '2' });
      assert.equal(await kv.pttl(k), -1);
    });

    it('hget and hgetall of a missing key give null and {}', async () => {
      const k = key('hash-missing');
      assert.equal(await kv.hget(k, 'a'), null);
      assert.deepEqual(await kv.hgetall(k), {});
    });

    it('hdel removes one field and says whether it existed', async () => {
      const k = key('hdel');
      await kv.hset(k, 'a', '1');
      await kv.hset(k, 'b', '2');
      assert.equal(await kv.hdel(k, 'a'), true);
      assert.equal(await kv.hdel(k, 'a'), false);
      assert.deepEqual(await kv.hgetall(k), { b: '2' });
    });

    it('hdel of the last field removes the hash and its TTL', async () => {
      const k = key('hdel-last');
      await kv.hset(k, 'a', '1');
      await kv.expire(k, LONG);
      assert.equal(await kv.hdel(k, 'a'), true);
      assert.equal(await kv.pttl(k), null);
      await kv.hset(k, 'b', '2');
      assert.equal(await kv.pttl(k), -1);
    });

    it('expire on a hash makes it invisible to hget, hgetall, hdel and del once passed', async () => {
      const k = key('hash-ttl');
      await kv.hset(k, 'a', '1');
      assert.equal(await kv.expire(k, SHORT), true);
      assertTtlWithin(await kv.pttl(k), SHORT);
      await kv.hset(k, 'b', '2');
      assertTtlWithin(await kv.pttl(k), SHORT);
      await expire(SHORT + 50);
      assert.equal(await kv.hget(k, 'a'), null);
      assert.deepEqual(await kv.hgetall(k), {});
      assert.equal(await kv.pttl(k), null);
      assert.equal(await kv.hdel(k, 'a'), false);
      assert.equal(await kv.del(k), false);
    });

    it('hset on an expired hash starts a new one, without the old fields or TTL', async () => {
      const k = key('hash-reborn');
      await kv.hset(k, 'old', '1');
      await kv.expire(k, SHORT);
      await expire(SHORT + 50);
      await kv.hset(k, 'new', '2');
      assert.deepEqual(await kv.hgetall(k), { new: '2' });
      assert.equal(await kv.pttl(k), -1);
    });

    it("expire 'gt' on a hash lengthens but never shortens its TTL", async () => {
      const k = key('hash-gt');
      await kv.hset(k, 'a', '1');
      assert.equal(await kv.expire(k, LONG, 'gt'), false);
      assert.equal(await kv.expire(k, LONG), true);
      assert.equal(await kv.expire(k, LONG / 2, 'gt'), false);
      assert.equal(await kv.expire(k, LONG * 2, 'gt'), true);
      const ttl = await kv.pttl(k);
      assert.ok(ttl !== null && ttl > LONG, `not lengthened: ${ttl}`);
    });

    it('del removes a whole hash', async () => {
      const k = key('hash-del');
      await kv.hset(k, 'a', '1');
      assert.equal(await kv.del(k), true);
      assert.deepEqual(await kv.hgetall(k), {});
    });
  });

  describe('pub/sub', () => {
    it('a subscribed handler receives what is published on its channel, and only that', async () => {
      const channel = key('chan');
      const got: string[] = [];
      const unsubscribe = await kv.subscribe(channel, (m) => got.push(m));
      await kv.publish(key('other-chan'), 'not for you');
      await kv.publish(channel, 'hello');
      await until(() => got.length > 0, 'the message');
      assert.deepEqual(got, ['hello']);
      await unsubscribe();
    });

    it('every handler of a channel receives, and unsubscribing one keeps the others', async () => {
      const channel = key('chan-many');
      const first: string[] = [];
      const second: string[] = [];
      const unsubscribeFirst = await kv.subscribe(channel, (m) => first.push(m));
      const unsubscribeSecond = await kv.subscribe(channel, (m) => second.push(m));
      await kv.publish(channel, 'm1');
      await until(() => first.length === 1 && second.length === 1, 'm1 in both handlers');
      await unsubscribeFirst();
      await kv.publish(channel, 'm2');
      // Messages arrive in publish order, so once the second handler has m2 the first would have it too.
      await until(() => second.length === 2, 'm2 in the remaining handler');
      assert.deepEqual(first, ['m1']);
      assert.deepEqual(second, ['m1', 'm2']);
      await unsubscribeSecond();
    });

    it('after unsubscribe a handler receives nothing more', async () => {
      const channel = key('chan-gone');
      const fence = key('chan-fence');
      const got: string[] = [];
      const fenced: string[] = [];
      const unsubscribe = await kv.subscribe(channel, (m) => got.push(m));
      const unsubscribeFence = await kv.subscribe(fence, (m) => fenced.push(m));
      await unsubscribe();
      await unsubscribe();
      await kv.publish(channel, 'too late');
      await kv.publish(fence, 'done');
      await until(() => fenced.length === 1, 'the fence message');
      assert.deepEqual(got, []);
      await unsubscribeFence();
    });
  });

  it('ping answers true', async () => {
    assert.equal(await kv.ping(), true);
  });
}

describe('MemoryKv', () => {
  const clock = new ManualClock();
  const memory = new MemoryKv(clock);
  kvConformance(async () => ({
    kv: memory,
    elapse: async (ms) => clock.advance(ms),
    close: () => memory.close(),
  }));

  it('keys lists live keys only', async () => {
    await memory.set('live-a', '1');
    await memory.hset('live-h', 'f', '1');
    await memory.set('dying', '1', { ttlMs: SHORT });
    clock.advance(SHORT);
    const keys = memory.keys();
    assert.ok(keys.includes('live-a') && keys.includes('live-h'));
    assert.ok(!keys.includes('dying'));
  });

  it('mixing a string and a hash under one key fails like Redis (WRONGTYPE)', async () => {
    await memory.hset('typed', 'f', '1');
    await assert.rejects(memory.get('typed'), /WRONGTYPE/);
  });
});

describe('SqliteKv', () => {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-kv-'));
  const path = join(dir, 'nested', 'kv.db');
  const clock = new ManualClock();
  let sqlite: SqliteKv;
  kvConformance(async () => {
    sqlite = new SqliteKv({ path, clock });
    return {
      kv: sqlite,
      elapse: async (ms) => clock.advance(ms),
      close: async () => {
        await sqlite.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  });

  it('creates the missing parent directory of its file', () => {
    assert.ok(existsSync(path));
  });

  it('sweep deletes expired strings and hashes from disk', async () => {
    await sqlite.set('sweep-s', 'v', { ttlMs: SHORT });
    await sqlite.hset('sweep-h', 'f', 'v');
    await sqlite.expire('sweep-h', SHORT);
    await sqlite.set('sweep-keep', 'v');
    clock.advance(SHORT + 1);
    sqlite.sweep();
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      const count = (sql: string) => db.prepare(sql).get()?.n;
      assert.equal(count("SELECT count(*) AS n FROM kv_strings WHERE key IN ('sweep-s', 'sweep-keep')"), 1);
      assert.equal(count("SELECT count(*) AS n FROM kv_hashes WHERE key = 'sweep-h'"), 0);
      assert.equal(count("SELECT count(*) AS n FROM kv_hash_expiry WHERE key = 'sweep-h'"), 0);
    } finally {
      db.close();
    }
  });

  it('two SqliteKv on one file in one process share pub/sub', async () => {
    const other = new SqliteKv({ path, clock });
    try {
      const got: string[] = [];
      const unsubscribe = await other.subscribe('shared', (m) => got.push(m));
      await sqlite.publish('shared', 'hi');
      await until(() => got.length === 1, 'the message from the other instance');
      await unsubscribe();
    } finally {
      await other.close();
    }
  });

  it('a write lock held past busyTimeoutMs fails the call with StoreUnavailableError', async () => {
    const impatient = new SqliteKv({ path, clock, busyTimeoutMs: 50 });
    const locker = new DatabaseSync(path);
    try {
      locker.exec('BEGIN IMMEDIATE');
      await assert.rejects(impatient.set('locked', 'v'), StoreUnavailableError);
      await assert.rejects(impatient.incr('locked', LONG), StoreUnavailableError);
    } finally {
      locker.exec('ROLLBACK');
      locker.close();
      await impatient.close();
    }
  });
});

describe('RedisKv', { skip: await skipUnless('redis') }, () => {
  const keyPrefix = uniquePrefix('kv');
  kvConformance(async () => {
    const redis = await RedisKv.connect(REDIS_URL, { keyPrefix });
    return {
      kv: redis,
      elapse: (ms) => sleep(ms),
      close: async () => {
        await redis.close();
        await deleteKeys(keyPrefix);
      },
    };
  });

  it('prefixes keys and pub/sub channels with keyPrefix', async () => {
    const raw = new Redis(REDIS_URL);
    const redis = await RedisKv.connect(REDIS_URL, { keyPrefix });
    try {
      await redis.set('prefixed', 'v');
      assert.equal(await raw.get(`${keyPrefix}prefixed`), 'v');
      await redis.subscribe('prefixed-channel', () => {});
      assert.deepEqual(await raw.pubsub('CHANNELS', `${keyPrefix}prefixed-channel`), [
        `${keyPrefix}prefixed-channel`,
      ]);
    } finally {
      await redis.close();
      raw.disconnect();
    }
  });
});

async function deleteKeys(prefix: string): Promise<void> {
  const raw = new Redis(REDIS_URL);
  try {
    const keys = await raw.keys(`${prefix}*`);
    if (keys.length > 0) await raw.del(keys);
  } finally {
    raw.disconnect();
  }
}

describe('RedisKv on Redis Cluster (3 masters, 3 replicas)', { skip: skipUnlessRedisServer() }, () => {
  let cluster: RedisCluster | undefined;
  kvConformance(async () => {
    cluster = await startRedisCluster();
    const redis = await RedisKv.connect(cluster.storeUrl, { keyPrefix: 'lkc:' });
    return {
      kv: redis,
      elapse: (ms) => sleep(ms),
      close: async () => {
        await redis.close();
        await cluster?.stop();
      },
    };
  });
});
