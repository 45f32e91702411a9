/**
 * Hole 11, driven by a hand clock: an owed device_quit is never dropped, whatever the outage lasts.
 * WuKongIM keeps a token until it is replaced or quit (it has no lifetime of its own), so giving
 * up, or letting the owed marker or the job expire, leaves a logged-out or banned device able to
 * connect for good. And once the IM server answers again, every owed quit is worked at once, not
 * each at the end of its own long back-off.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { cryptoRandom } from '../../src/ports/random.ts';
import { ImUnavailableError, type ImBridge, type ImDeviceFlag } from '../../src/ports/im-bridge.ts';
import { defaultDevicePolicies } from '../../src/core/sessions/policy.ts';
import { ImTokens } from '../../src/core/sessions/im-tokens.ts';
import { ImQuitQueue } from '../../src/core/sessions/im-quit-queue.ts';
import { imTokenKey } from '../../src/core/sessions/keys.ts';

const WEB = 1;
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/** An IM server that can be down; it records the device_quit calls it took. */
class SwitchableIm implements ImBridge {
  up = true;
  readonly quits: [string, number][] = [];

  async updateToken(): Promise<void> {
    if (!this.up) throw new ImUnavailableError('down');
  }

  async deviceQuit(uid: string, flag: ImDeviceFlag | -1): Promise<void> {
    if (!this.up) throw new ImUnavailableError('down');
    this.quits.push([uid, flag]);
  }
}

function world(options: { maxAttempts: number; imTokenTtlMs: number }) {
  let now = 1_000_000;
  const clock = { now: () => now };
  const kv = new MemoryKv(clock);
  const im = new SwitchableIm();
  const live = new Set<string>();
  const queue = new ImQuitQueue(kv, clock, { intervalMs: 1000, maxIntervalMs: 5 * MINUTE, maxAttempts: options.maxAttempts });
  const tokens = new ImTokens({
    kv,
    bridge: im,
    random: cryptoRandom,
    policies: defaultDevicePolicies,
    ttlMs: options.imTokenTtlMs,
    hasLiveSession: async (uid) => live.has(uid),
    owedQuits: queue,
  });
  const drain = () => queue.drain((uid, flag) => tokens.settleOwed(uid, flag));
  return { kv, im, live, queue, tokens, drain, advance: (ms: number) => (now += ms) };
}

describe('owed device_quit calls are never dropped', () => {
  it('is still retried, and delivered, after max_attempts, the IM token key\'s TTL and a week of outage', async () => {
    const w = world({ maxAttempts: 3, imTokenTtlMs: 10 * MINUTE });
    w.live.add('u1');
    await w.tokens.acquire('u1', WEB);
    w.live.delete('u1');
    w.im.up = false;
    assert.equal(await w.tokens.release('u1', WEB), 'failed');

    let overdue = 0;
    for (let hour = 0; hour < 24 * 8; hour++) {
      w.advance(60 * MINUTE);
      const report = await w.drain();
      assert.equal(report.delivered, 0);
      overdue += report.overdue;
    }
    assert.equal(overdue, 1, 'passing max_attempts is reported once');
    assert.equal(await w.queue.size(), 1, 'still owed after 8 days of outage');

    w.im.up = true;
    w.advance(5 * MINUTE);
    assert.equal((await w.drain()).delivered, 1);
    assert.deepEqual(w.im.quits, [['u1', WEB]], 'the device_quit reached the IM server');
    assert.equal(await w.queue.size(), 0);
    assert.equal(await w.kv.get(imTokenKey('u1', WEB)), null);
  });

  it('retries at the capped interval, not at an ever-growing one', async () => {
    const w = world({ maxAttempts: 3, imTokenTtlMs: 10 * MINUTE });
    w.live.add('u1');
    await w.tokens.acquire('u1', WEB);
    w.live.delete('u1');
    w.im.up = false;
    await w.tokens.release('u1', WEB);
    for (let i = 0; i < 40; i++) {
      w.advance(10 * MINUTE);
      await w.drain();
    }
    w.im.up = true;
    w.advance(5 * MINUTE);
    assert.equal((await w.drain()).delivered, 1, 'due again within the 5-minute cap');
  });

  it('once the IM server answers again, every owed quit is worked at once, whatever its back-off', async () => {
    // Many attempts allowed: this is about how soon, not about giving up.
    const w = world({ maxAttempts: 100, imTokenTtlMs: DAY });
    for (const uid of ['early', 'late']) {
      w.live.add(uid);
      await w.tokens.acquire(uid, WEB);
      w.live.delete(uid);
    }
    w.im.up = false;
    assert.equal(await w.tokens.release('early', WEB), 'failed');
    for (let i = 0; i < 10; i++) {
      w.advance(MINUTE);
      await w.drain();
    }
    // The first job's back-off is now minutes long; the second one's is a second.
    assert.equal(await w.tokens.release('late', WEB), 'failed');
    w.im.up = true;
    let report = await w.drain();
    while (report.delivered === 0) {
      w.advance(1000);
      report = await w.drain();
    }
    assert.equal(report.delivered, 2, 'the first success worked the rest of the queue at once');
    assert.equal(await w.queue.size(), 0);
    assert.deepEqual(w.im.quits.map(([uid]) => uid).sort(), ['early', 'late']);
  });

  it('a login that reaches the IM server again makes the next pass work every owed quit', async () => {
    const w = world({ maxAttempts: 100, imTokenTtlMs: DAY });
    w.live.add('gone');
    await w.tokens.acquire('gone', WEB);
    w.live.delete('gone');
    w.im.up = false;
    await w.tokens.release('gone', WEB);
    for (let i = 0; i < 10; i++) {
      w.advance(MINUTE);
      await w.drain();
    }
    w.im.up = true;
    w.live.add('other');
    await w.tokens.acquire('other', WEB);
    assert.equal((await w.drain()).delivered, 1, 'worked before its back-off ended');
    assert.deepEqual(w.im.quits, [['gone', WEB]]);
  });
});
