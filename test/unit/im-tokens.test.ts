/**
 * The IM token protocol's rarer paths, driven by hand: one exact interleaving that three racing
 * requests need (too large a space for the explorer to enumerate), and the retry queue of owed
 * device_quit calls.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { cryptoRandom } from '../../src/ports/random.ts';
import type { ImBridge, ImDeviceFlag } from '../../src/ports/im-bridge.ts';
import { defaultDevicePolicies } from '../../src/core/sessions/policy.ts';
import { ImTokens } from '../../src/core/sessions/im-tokens.ts';
import { ImQuitQueue } from '../../src/core/sessions/im-quit-queue.ts';
import { imTokenKey } from '../../src/core/sessions/keys.ts';

const UID = 'u1';
const WEB = 1;

interface Gate {
  /** Resolves when the held call is made. */
  readonly reached: Promise<void>;
  open(): void;
}

/** An IM server whose calls can be held before they land or before they answer, per caller. */
class GatedImServer {
  readonly stored = new Map<number, string | null>();
  readonly #gates = new Map<string, { gate: Gate; when: 'before' | 'after'; wait: Promise<void>; arrive: () => void }>();

  hold(caller: string, call: 'update' | 'quit', when: 'before' | 'after'): Gate {
    let arrive = () => {};
    let open = () => {};
    const reached = new Promise<void>((resolve) => (arrive = resolve));
    const wait = new Promise<void>((resolve) => (open = resolve));
    const gate = { reached, open };
    this.#gates.set(`${caller}:${call}`, { gate, when, wait, arrive });
    return gate;
  }

  bridge(caller: string): ImBridge {
    const run = async (call: 'update' | 'quit', land: () => void) => {
      const held = this.#gates.get(`${caller}:${call}`);
      this.#gates.delete(`${caller}:${call}`);
      held?.arrive();
      if (held?.when === 'before') await held.wait;
      land();
      if (held?.when === 'after') await held.wait;
    };
    return {
      updateToken: (update) => run('update', () => this.stored.set(update.flag, update.token)),
      deviceQuit: (_uid, flag) => run('quit', () => {
        for (const each of flag === -1 ? [0, 1, 2] : [flag]) this.stored.set(each, null);
      }),
    };
  }
}

function protocolFor(kv: MemoryKv, im: GatedImServer, live: Set<string>, caller: string): ImTokens {
  return new ImTokens({
    kv,
    bridge: im.bridge(caller),
    random: cryptoRandom,
    policies: defaultDevicePolicies,
    ttlMs: 3600_000,
    hasLiveSession: async () => live.size > 0,
    owedQuits: new ImQuitQueue(kv, { now: () => 0 }, { intervalMs: 1000, maxAttempts: 3 }),
  });
}

describe('the IM token protocol, one interleaving at a time', () => {
  it('a rotation whose update lands after a new login\'s, and then finds the token gone, still commits: the login re-pushes its own', async () => {
    const kv = new MemoryKv();
    const im = new GatedImServer();
    const live = new Set(['web1', 'web2']);
    const seeded = await protocolFor(kv, im, live, 'seed').acquire(UID, WEB);
    live.delete('web1');

    // web1 logs out while web2 remains: a rotation, whose new token is slow to reach the IM server.
    const lateUpdate = im.hold('logout1', 'update', 'before');
    const logout1 = protocolFor(kv, im, live, 'logout1').release(UID, WEB);
    await lateUpdate.reached;
    // web2 logs out meanwhile: the last one, so the token is deleted.
    live.delete('web2');
    assert.equal(await protocolFor(kv, im, live, 'logout2').release(UID, WEB), 'ok');
    // A new login creates a token; the IM server takes it, the answer is slow.
    live.add('login');
    const slowAnswer = im.hold('login', 'update', 'after');
    const login = protocolFor(kv, im, live, 'login').acquire(UID, WEB);
    await slowAnswer.reached;
    // Now the rotation's update lands, over the login's; its commit fails and nothing is left...
    lateUpdate.open();
    assert.equal(await logout1, 'ok');
    slowAnswer.open();
    const token = await login;

    // ...but it committed that, so the login's commit fails too and it pushes its token again.
    assert.notEqual(token, seeded);
    assert.equal(im.stored.get(WEB), token, 'the IM server holds the token the login handed out');
    assert.equal(await protocolFor(kv, im, live, 'check').current(UID, WEB), token);
  });
});

describe('an exclusive flag: a login ended before it answered, and a login\'s own token', () => {
  const APP = 0;

  it('replaces its own token when it committed after the login that replaced it, and leaves a later winner\'s alone', async () => {
    const kv = new MemoryKv();
    const im = new GatedImServer();
    const live = new Set(['winner']);
    // The winner (which ended the loser's session) pushed and committed first...
    const winner = await protocolFor(kv, im, live, 'winner').acquire(UID, APP);
    // ...then the loser, whose acquire had started before, pushed and committed over it.
    const loser = await protocolFor(kv, im, live, 'loser').acquire(UID, APP);
    assert.equal(im.stored.get(APP), loser);
    // Its session is found ended: the release names the token it committed.
    assert.equal(await protocolFor(kv, im, live, 'loser').releaseCommitted(UID, APP, loser), 'ok');
    const now = im.stored.get(APP);
    assert.notEqual(now, loser, 'the ended login\'s token no longer connects');
    assert.notEqual(now, winner);
    assert.equal(await protocolFor(kv, im, live, 'check').current(UID, APP), now, 'the store says the same');

    // A winner that committed after the loser: the loser's release leaves it as it is.
    const later = await protocolFor(kv, im, live, 'later').acquire(UID, APP);
    assert.equal(await protocolFor(kv, im, live, 'loser').releaseCommitted(UID, APP, loser), 'ok');
    assert.equal(im.stored.get(APP), later);
  });

  it('pushes a given own token as it is and keeps only what it is told to keep', async () => {
    const kv = new MemoryKv();
    const im = new GatedImServer();
    const kept = await protocolFor(kv, im, new Set(['web']), 'login').acquire(UID, APP, { push: 'the-session-token', keep: 'ab'.repeat(16) });
    assert.equal(kept, 'ab'.repeat(16));
    assert.equal(im.stored.get(APP), 'the-session-token');
    assert.equal(await kv.get(imTokenKey(UID, APP)).then((value) => value?.includes('the-session-token') ?? false), false);
    await assert.rejects(protocolFor(kv, im, new Set(), 'multi').acquire(UID, WEB, { push: 't', keep: 'cd'.repeat(16) }), /exclusive flag only/);
  });
});

describe('the retry queue of owed device_quit calls', () => {
  const setup = (maxAttempts = 3) => {
    let now = 1_000_000;
    const clock = { now: () => now };
    const kv = new MemoryKv(clock);
    const queue = (name = 'node') => Object.assign(new ImQuitQueue(kv, clock, { intervalMs: 1000, maxAttempts }), { name });
    return { kv, queue, advance: (ms: number) => (now += ms) };
  };

  it('works a job once it is due, and forgets it once settled', async () => {
    const { queue, advance } = setup();
    const node = queue();
    await node.enqueue(UID, WEB);
    await node.enqueue(UID, WEB);
    assert.equal(await node.size(), 1, 'one job per (uid, flag)');
    const worked: [string, ImDeviceFlag][] = [];
    const work = async (uid: string, flag: ImDeviceFlag) => (worked.push([uid, flag]), true);
    assert.deepEqual(await node.drain(work), { delivered: 0, failed: 0, overdue: 0 }, 'not due yet');
    advance(1000);
    assert.deepEqual(await node.drain(work), { delivered: 1, failed: 0, overdue: 0 });
    assert.deepEqual(worked, [[UID, WEB]]);
    assert.equal(await node.size(), 0);
  });

  it('backs off after each failure, reports a job overdue once past the configured attempts, and keeps it', async () => {
    const { queue, advance } = setup(3);
    const node = queue();
    await node.enqueue(UID, WEB);
    const failing = async () => false;
    advance(1000);
    assert.deepEqual(await node.drain(failing), { delivered: 0, failed: 1, overdue: 0 });
    advance(1000);
    assert.deepEqual(await node.drain(failing), { delivered: 0, failed: 1, overdue: 0 });
    advance(1000);
    assert.deepEqual(await node.drain(failing), { delivered: 0, failed: 0, overdue: 0 }, 'after the second failure it waits twice as long');
    advance(1000);
    assert.deepEqual(await node.drain(failing), { delivered: 0, failed: 1, overdue: 1 }, 'the third attempt passes max_attempts');
    advance(8000);
    assert.deepEqual(await node.drain(failing), { delivered: 0, failed: 1, overdue: 0 }, 'still retried, reported overdue only once');
    assert.equal(await node.size(), 1);
  });

  it('of two nodes draining at once, only one works a due job', async () => {
    const { queue, advance } = setup();
    const [a, b] = [queue('a'), queue('b')];
    await a.enqueue(UID, WEB);
    advance(1000);
    let calls = 0;
    const slow = async () => {
      calls += 1;
      await new Promise((resolve) => setTimeout(resolve, 20));
      return true;
    };
    const reports = await Promise.all([a.drain(slow), b.drain(slow)]);
    assert.equal(calls, 1);
    assert.equal(reports[0].delivered + reports[1].delivered, 1);
  });

  it('a job queued again while it is being settled is not lost', async () => {
    const { queue, advance } = setup();
    const node = queue();
    await node.enqueue(UID, WEB);
    advance(1000);
    await node.drain(async () => {
      await node.enqueue(UID, 2);
      return true;
    });
    assert.equal(await node.size(), 1, 'the other flag\'s job is still listed');
  });
});
