/**
 * The retry queue of owed device_quit calls (im-quit-queue.ts), asserted on what it stores and when
 * it works a job: the back-off and its caps, the rush after the IM server answers again, and what
 * it does with listings and jobs it cannot read. Kills the StrykerJS mutants the queue's tests in
 * im-tokens.test.ts leave (test/mutation/report.md).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { ImQuitQueue, type ImQuitRetryOptions } from '../../src/core/sessions/im-quit-queue.ts';

const UID = 'u1';
const JOB = `user:{${UID}}:im-quit:1`;
const LISTING = 'im-quit-queue';
const FIELD = JSON.stringify([UID, 1]);

const never = async () => false;
const always = async () => true;

async function setup(options: Partial<ImQuitRetryOptions> = {}) {
  let now = 1_000_000;
  const clock = { now: () => now };
  const kv = new MemoryKv(clock);
  const queue = new ImQuitQueue(kv, clock, { intervalMs: 1000, maxAttempts: 3, ...options });
  // A node that has seen the IM server answer, and drained the rush that followed: none pending.
  queue.imAnswered();
  await queue.drain(always);
  return { kv, queue, clock, advance: (ms: number) => (now += ms), job: async () => JSON.parse((await kv.get(JOB)) ?? 'null') as unknown };
}

describe('the owed-quit queue stores', () => {
  it('a job due one interval from now, listed under [uid, flag]', async () => {
    const { kv, queue, job } = await setup();
    await queue.enqueue(UID, 1);
    assert.deepEqual(await job(), { attempts: 0, due_at: 1_001_000 });
    assert.equal(await kv.pttl(JOB), -1, 'an owed quit never expires');
    assert.deepEqual(await kv.hgetall(LISTING), { [FIELD]: '1' });
    assert.equal(await queue.size(), 1);
  });

  it('each failed attempt doubling the back-off, up to maxIntervalMs', async () => {
    const { queue, advance, job } = await setup({ maxIntervalMs: 3000 });
    await queue.enqueue(UID, 1);
    advance(1000);
    await queue.drain(never);
    assert.deepEqual(await job(), { attempts: 1, due_at: 1_002_000 });
    advance(1000);
    await queue.drain(never);
    assert.deepEqual(await job(), { attempts: 2, due_at: 1_004_000 });
    advance(2000);
    await queue.drain(never);
    assert.deepEqual(await job(), { attempts: 3, due_at: 1_007_000 }, 'capped at 3 s, not 4');
  });

  it('five minutes at most by default, and no overflow of the doubling after many attempts', async () => {
    const { kv, queue, advance, job } = await setup({ intervalMs: 1 });
    await kv.set(JOB, JSON.stringify({ attempts: 24, due_at: 0 }));
    await kv.hset(LISTING, FIELD, '1');
    const big = await setup({ intervalMs: 1, maxIntervalMs: 1e12 });
    await big.kv.set(JOB, JSON.stringify({ attempts: 24, due_at: 0 }));
    await big.kv.hset(LISTING, FIELD, '1');
    advance(0);
    await queue.drain(never);
    await big.queue.drain(never);
    assert.deepEqual(await job(), { attempts: 25, due_at: 1_000_000 + 300_000 });
    assert.deepEqual(await big.job(), { attempts: 25, due_at: 1_000_000 + 2 ** 20 }, 'the exponent stops at 20');
  });

  it('a job queued again keeps its attempts and back-off', async () => {
    const { queue, advance, job } = await setup();
    await queue.enqueue(UID, 1);
    advance(1000);
    await queue.drain(never);
    await queue.enqueue(UID, 1);
    assert.deepEqual(await job(), { attempts: 1, due_at: 1_002_000 });
  });

  it('a claim drops the TTL a job of an older version carries', async () => {
    const { kv, queue } = await setup();
    await kv.set(JOB, JSON.stringify({ attempts: 0, due_at: 0 }), { ttlMs: 60_000 });
    await kv.hset(LISTING, FIELD, '1');
    await queue.drain(never);
    assert.equal(await kv.pttl(JOB), -1);
  });
});

describe('the owed-quit queue works', () => {
  it('a job when it is due exactly, not before', async () => {
    const { queue, advance } = await setup();
    await queue.enqueue(UID, 1);
    advance(999);
    assert.deepEqual(await queue.drain(always), { delivered: 0, failed: 0, overdue: 0 });
    advance(1);
    assert.deepEqual(await queue.drain(always), { delivered: 1, failed: 0, overdue: 0 });
    assert.equal(await queue.size(), 0);
  });

  it('a work that throws as one failed attempt', async () => {
    const { queue, advance, job } = await setup();
    await queue.enqueue(UID, 1);
    advance(1000);
    assert.deepEqual(await queue.drain(async () => { throw new Error('store down'); }), { delivered: 0, failed: 1, overdue: 0 });
    assert.deepEqual(await job(), { attempts: 1, due_at: 1_002_000 });
  });

  it('every job at once on a node that has not yet seen the IM server answer', async () => {
    let now = 0;
    const clock = { now: () => now };
    const kv = new MemoryKv(clock);
    const fresh = new ImQuitQueue(kv, clock, { intervalMs: 1000, maxAttempts: 3 });
    await fresh.enqueue(UID, 1);
    assert.deepEqual(await fresh.drain(always), { delivered: 0, failed: 0, overdue: 0 }, 'not due, no answer seen');
    fresh.imAnswered();
    assert.deepEqual(await fresh.drain(always), { delivered: 1, failed: 0, overdue: 0 }, 'the first answer rushes the queue');
  });

  it('every job at once after the IM server answers again, but only after a failure', async () => {
    const { queue } = await setup();
    await queue.enqueue(UID, 1);
    queue.imAnswered();
    assert.deepEqual(await queue.drain(always), { delivered: 0, failed: 0, overdue: 0 }, 'an answer without a failure rushes nothing');
    queue.imFailed();
    assert.deepEqual(await queue.drain(always), { delivered: 0, failed: 0, overdue: 0 }, 'a failure alone rushes nothing');
    queue.imAnswered();
    assert.deepEqual(await queue.drain(always), { delivered: 1, failed: 0, overdue: 0 });
  });

  it('the rest of the queue in a second pass when the IM server answers again during the first', async () => {
    const { kv, queue, advance } = await setup();
    await queue.enqueue(UID, 1);
    advance(1000);
    await kv.set(`user:{${UID}}:im-quit:2`, JSON.stringify({ attempts: 0, due_at: 9e15 }));
    await kv.hset(LISTING, JSON.stringify([UID, 2]), '1');
    const worked: number[] = [];
    const report = await queue.drain(async (_uid, flag) => {
      worked.push(flag);
      queue.imFailed();
      queue.imAnswered();
      return true;
    });
    assert.deepEqual(worked, [1, 2]);
    assert.deepEqual(report, { delivered: 2, failed: 0, overdue: 0 });
  });
});

describe('the owed-quit queue forgets', () => {
  it('listings it cannot read, and listings whose job is gone or unreadable', async () => {
    const { kv, queue } = await setup();
    for (const field of ['garbage', '["u1",7]', '[7,1]', '"u1"']) await kv.hset(LISTING, field, '1');
    // Due jobs under the keys a misread listing would name: still never worked from such a listing.
    const misread = ['user:{u1}:im-quit:7', 'user:{7}:im-quit:1', 'user:{u}:im-quit:1'];
    for (const job of misread) await kv.set(job, JSON.stringify({ attempts: 0, due_at: 0 }));
    await kv.hset(LISTING, FIELD, '1');
    await kv.set(`user:{u2}:im-quit:0`, '{"attempts":"1","due_at":0}');
    await kv.hset(LISTING, JSON.stringify(['u2', 0]), '1');
    await kv.set(`user:{u3}:im-quit:2`, '{"attempts":1}');
    await kv.hset(LISTING, JSON.stringify(['u3', 2]), '1');
    await kv.set(`user:{u4}:im-quit:2`, 'not json');
    await kv.hset(LISTING, JSON.stringify(['u4', 2]), '1');
    const worked: string[] = [];
    assert.deepEqual(await queue.drain(async (uid) => (worked.push(uid), true)), { delivered: 0, failed: 0, overdue: 0 });
    assert.deepEqual(worked, []);
    assert.deepEqual(await kv.hgetall(LISTING), {});
    assert.deepEqual(kv.keys().sort(), misread.sort(), 'unreadable jobs dropped too');
  });

  it('a settled job, but not one queued again while it was worked', async () => {
    const { kv, queue, advance } = await setup();
    await queue.enqueue(UID, 1);
    advance(1000);
    await queue.drain(async () => {
      // The job is claimed (rewritten) by now; a logout meanwhile owes a new quit: the job is recreated.
      await kv.del(JOB);
      await queue.enqueue(UID, 1);
      return true;
    });
    assert.deepEqual(await kv.hgetall(LISTING), { [FIELD]: '1' });
    assert.ok((await kv.get(JOB)) !== null);
  });
});
