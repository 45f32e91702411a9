/**
 * The shared IM token protocol (im-tokens.ts) call by call, on the in-memory Kv with an IM server
 * that records what it was told: which calls a login, a release, a sweep and the retry worker
 * make, at which level, and what each commits to `user:{uid}:im:<flag>`. Kills the StrykerJS
 * mutants the interleaving test in im-tokens.test.ts leaves (test/mutation/report.md).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { cryptoRandom } from '../../src/ports/random.ts';
import { ImBannedError, ImUnavailableError, type ImBridge, type ImTokenUpdate } from '../../src/ports/im-bridge.ts';
import { defaultDevicePolicies } from '../../src/core/sessions/policy.ts';
import { ImTokens } from '../../src/core/sessions/im-tokens.ts';
import { ImQuitQueue } from '../../src/core/sessions/im-quit-queue.ts';
import { parseImTokenValue } from '../../src/core/sessions/im-token-value.ts';

const UID = 'u1';
const APP = 0;
const WEB = 1;
const PC = 2;
const TTL = 3_600_000;
const key = (flag: number) => `user:{${UID}}:im:${flag}`;

type Call = ['update', number, string, string] | ['quit', number];

class RecordingIm implements ImBridge {
  readonly calls: Call[] = [];
  /** Thrown by every call while set. */
  down: Error | null = null;
  /** Thrown by the next update only. */
  nextUpdate: Error | null = null;
  /** Every call made, answered or not. */
  attempts = 0;
  /** Run after a failed update (to take the IM server down from then on). */
  afterRefusal: () => void = () => {};
  async updateToken(update: ImTokenUpdate): Promise<void> {
    this.attempts += 1;
    const error = this.down ?? this.nextUpdate;
    this.nextUpdate = null;
    if (error !== null) {
      this.afterRefusal();
      throw error;
    }
    this.calls.push(['update', update.flag, update.token, update.level]);
  }
  async deviceQuit(_uid: string, flag: number): Promise<void> {
    this.attempts += 1;
    if (this.down !== null) throw this.down;
    this.calls.push(['quit', flag]);
  }
  take(): Call[] {
    return this.calls.splice(0);
  }
}

function setup() {
  const kv = new MemoryKv();
  const im = new RecordingIm();
  const live = new Set<number>();
  const watched: string[] = [];
  const queue = new ImQuitQueue(kv, { now: () => 0 }, { intervalMs: 1000, maxAttempts: 3 });
  const owedQuits = Object.assign(queue, {
    imFailed: () => void watched.push('failed'),
    imAnswered: () => void watched.push('answered'),
  });
  const tokens = new ImTokens({
    kv, bridge: im, random: cryptoRandom, policies: defaultDevicePolicies, ttlMs: TTL,
    hasLiveSession: async (_uid, flag) => live.has(flag), owedQuits,
  });
  const value = async (flag: number) => parseImTokenValue(await kv.get(key(flag)));
  return { kv, im, live, watched, tokens, queue, value };
}

/**
 * Another call deletes the flag's token just before `method` first acts on it (a compare-and-set
 * only when it writes the owed mark), which then finds it gone.
 */
function removedBefore(kv: MemoryKv, method: 'compareAndSet' | 'compareAndDelete', flag: number): void {
  const original = kv[method].bind(kv) as (key: string, ...rest: unknown[]) => Promise<boolean>;
  let raced = false;
  const racing = async (k: string, ...rest: unknown[]): Promise<boolean> => {
    const aimed = method === 'compareAndDelete' || String(rest[1]).startsWith('owed:');
    if (k === key(flag) && aimed && !raced) {
      raced = true;
      await kv.del(k);
      return false;
    }
    return original(k, ...rest);
  };
  Object.assign(kv, { [method]: racing });
}

describe('acquire', () => {
  it('a multi flag shares one token at level slave, stored for the session lifetime', async () => {
    const { kv, im, live, tokens, value } = setup();
    const first = await tokens.acquire(UID, WEB);
    live.add(WEB);
    assert.match(first, /^[0-9a-f]{32}$/);
    assert.deepEqual(im.take(), [['update', WEB, first, 'slave']]);
    assert.deepEqual(await value(WEB), { state: 'live', token: first });
    assert.ok(((await kv.pttl(key(WEB))) ?? 0) > TTL - 5000);
    assert.equal(await tokens.acquire(UID, WEB), first);
    assert.deepEqual(im.take(), [['update', WEB, first, 'slave']], 're-confirmed, not quit');
    assert.equal(await tokens.current(UID, WEB), first);
  });

  it('an exclusive flag gets a fresh token at level master on every login', async () => {
    const { im, tokens } = setup();
    const first = await tokens.acquire(UID, APP);
    const second = await tokens.acquire(UID, APP);
    assert.notEqual(first, second);
    assert.deepEqual(im.take(), [['update', APP, first, 'master'], ['update', APP, second, 'master']]);
    assert.equal(await tokens.current(UID, APP), second);
  });

  it('an owed token is not reused: the device is quit first, then a fresh token pushed', async () => {
    const { im, live, tokens, value } = setup();
    const first = await tokens.acquire(UID, WEB);
    im.down = new ImUnavailableError('down');
    assert.equal(await tokens.release(UID, WEB), 'failed');
    assert.deepEqual(await value(WEB), { state: 'owed', token: first });
    assert.equal(await tokens.current(UID, WEB), null, 'an owed token is no current token');
    im.down = null;
    im.take();
    live.add(WEB);
    const second = await tokens.acquire(UID, WEB);
    assert.notEqual(second, first);
    assert.deepEqual(im.take(), [['quit', WEB], ['update', WEB, second, 'slave']]);
  });

  it('when the value keeps changing, gives up after 8 attempts, quitting what it pushed before each retry', async () => {
    const { kv, im, tokens } = setup();
    const set = kv.set.bind(kv);
    // Every commit loses: someone writes the key between the read and the commit.
    kv.set = async (k, v, options) => (k === key(WEB) ? false : set(k, v, options));
    await assert.rejects(tokens.acquire(UID, WEB), { name: 'ImContentionError', message: 'the IM token kept changing during this login' });
    const calls = im.take();
    assert.equal(calls.filter(([call]) => call === 'update').length, 8);
    assert.equal(calls.filter(([call]) => call === 'quit').length, 7, 'each retry kicks the token the last attempt pushed');
    assert.deepEqual(calls[0]?.[0], 'update');
  });

  it('a retry that meets a token another login made live reuses it, after quitting the one it pushed', async () => {
    const { kv, im, tokens } = setup();
    const set = kv.set.bind(kv);
    let other = '';
    kv.set = async (k, v, options) => {
      if (k !== key(WEB) || other !== '') return set(k, v, options);
      // A concurrent login commits its token first.
      other = 'f'.repeat(32);
      await set(k, `live:${other}:n1`);
      return set(k, v, options);
    };
    const token = await tokens.acquire(UID, WEB);
    assert.equal(token, other);
    const calls = im.take();
    assert.deepEqual(calls.slice(1), [['quit', WEB], ['update', WEB, other, 'slave']], 'its own push undone by a quit, then the winner re-pushed');
  });
});

describe('release', () => {
  it('the last session of a flag quits the device and deletes the token', async () => {
    const { kv, im, tokens } = setup();
    await tokens.acquire(UID, WEB);
    im.take();
    assert.equal(await tokens.release(UID, WEB), 'ok');
    assert.deepEqual(im.take(), [['quit', WEB]]);
    assert.equal(await kv.get(key(WEB)), null);
  });

  it('with sessions left, quits the device and rotates the token', async () => {
    const { kv, im, live, tokens, value } = setup();
    const first = await tokens.acquire(UID, PC);
    live.add(PC);
    im.take();
    assert.equal(await tokens.release(UID, PC), 'ok');
    const ttl = (await kv.pttl(key(PC))) ?? 0;
    assert.ok(ttl > TTL - 5000, `the rotated token lives as long as a session (TTL ${ttl})`);
    const current = await value(PC);
    assert.equal(current.state, 'live');
    assert.ok(current.state === 'live' && current.token !== first);
    assert.deepEqual(im.take(), [['quit', PC], ['update', PC, current.state === 'live' ? current.token : '', 'slave']]);
  });

  it('of an exclusive flag whose replacing login is live, does nothing: that login\'s master push kicked it', async () => {
    const { im, live, tokens, value } = setup();
    const token = await tokens.acquire(UID, APP);
    live.add(APP);
    im.take();
    assert.equal(await tokens.release(UID, APP), 'ok');
    assert.deepEqual(im.take(), []);
    assert.deepEqual(await value(APP), { state: 'live', token });
  });

  it('with no token, does nothing', async () => {
    const { kv, im, tokens } = setup();
    assert.equal(await tokens.release(UID, WEB), 'ok');
    await kv.set(key(WEB), 'none:abc');
    assert.equal(await tokens.release(UID, WEB), 'ok');
    assert.deepEqual(im.take(), []);
    assert.equal(await kv.get(key(WEB)), 'none:abc');
  });

  it('an IM server that cannot be told: the token is owed, kept without TTL, and its quit queued', async () => {
    const { kv, im, tokens, queue, watched, value } = setup();
    const token = await tokens.acquire(UID, WEB);
    im.down = new ImUnavailableError('down');
    watched.length = 0;
    assert.equal(await tokens.release(UID, WEB), 'failed');
    assert.deepEqual(await value(WEB), { state: 'owed', token });
    assert.equal(await kv.pttl(key(WEB)), -1);
    assert.equal(await queue.size(), 1);
    assert.equal(await tokens.owes(UID), true);
    assert.deepEqual(watched, ['failed']);
    // Already owed: a second failure only queues again, after one attempt.
    im.attempts = 0;
    assert.equal(await tokens.release(UID, WEB), 'failed');
    assert.equal(im.attempts, 1);
    assert.deepEqual(await value(WEB), { state: 'owed', token });
  });

  it('an IM server down, and the token removed before the owed mark: committed as none', async () => {
    const { kv, im, tokens } = setup();
    await tokens.acquire(UID, WEB);
    removedBefore(kv, 'compareAndSet', WEB);
    im.down = new ImUnavailableError('down');
    await tokens.release(UID, WEB);
    // Its quit that timed out may still land: committed like any other step.
    assert.match((await kv.get(key(WEB))) ?? '', /^none:/);
  });

  it('an IM server that bans the user took the quit: the release commits', async () => {
    const { kv, im, live, tokens, watched } = setup();
    await tokens.acquire(UID, WEB);
    live.add(WEB);
    im.nextUpdate = new ImBannedError('banned');
    watched.length = 0;
    assert.equal(await tokens.release(UID, WEB), 'ok');
    assert.deepEqual(watched, ['answered', 'answered'], 'the quit answered, and the ban is an answer');
    assert.equal(parseImTokenValue(await kv.get(key(WEB))).state, 'live');
  });

  it('any other error of the IM server is thrown', async () => {
    const { im, tokens } = setup();
    await tokens.acquire(UID, WEB);
    const strange = new TypeError('strange');
    im.down = strange;
    await assert.rejects(tokens.release(UID, WEB), (error) => error === strange);
  });

  it('releaseUnheld leaves the token of live sessions alone, and removes one nobody holds', async () => {
    const { kv, im, live, tokens } = setup();
    await tokens.acquire(UID, WEB);
    live.add(WEB);
    im.take();
    assert.equal(await tokens.releaseUnheld(UID, WEB), 'ok');
    assert.deepEqual(im.take(), []);
    live.delete(WEB);
    assert.equal(await tokens.releaseUnheld(UID, WEB), 'ok');
    assert.deepEqual(im.take(), [['quit', WEB]]);
    assert.equal(await kv.get(key(WEB)), null);
  });
});

describe('a release whose commit loses', () => {
  it('to a refresh of the same token at login: the retry re-pushes it without a quit', async () => {
    const { kv, im, live, tokens } = setup();
    const token = await tokens.acquire(UID, WEB);
    live.add(WEB);
    im.take();
    const cas = kv.compareAndSet.bind(kv);
    let raced = false;
    kv.compareAndSet = async (k, expected, v, options) => {
      if (k === key(WEB) && !raced) {
        raced = true;
        // Another login re-confirms the same token first (new nonce).
        await kv.set(k, `live:${token}:n2`);
      }
      return cas(k, expected, v, options);
    };
    assert.equal(await tokens.acquire(UID, WEB), token);
    assert.deepEqual(im.take(), [['update', WEB, token, 'slave'], ['update', WEB, token, 'slave']]);
  });

  it('every time gives up after 8 attempts, failed', async () => {
    const { kv, im, tokens } = setup();
    await tokens.acquire(UID, WEB);
    im.take();
    kv.compareAndDelete = async () => false;
    assert.equal(await tokens.release(UID, WEB), 'failed');
    assert.equal(im.take().length, 8);
  });

  it('to a concurrent removal still commits its quit, with no second one', async () => {
    const { kv, im, tokens } = setup();
    await tokens.acquire(UID, WEB);
    im.take();
    removedBefore(kv, 'compareAndDelete', WEB);
    assert.equal(await tokens.release(UID, WEB), 'ok');
    assert.deepEqual(im.take(), [['quit', WEB]]);
    // Its quit may have landed after another's update: committed as `none`, so that update's commit fails.
    assert.match((await kv.get(key(WEB))) ?? '', /^none:/);
  });
});

describe('the retry worker', () => {
  it('settles an owed token once the IM server is back, and leaves live ones alone', async () => {
    const { kv, im, tokens } = setup();
    await tokens.acquire(UID, PC);
    assert.equal(await tokens.settleOwed(UID, PC), true, 'nothing owed');
    assert.ok(await kv.get(key(PC)));
    im.down = new ImUnavailableError('down');
    await tokens.release(UID, PC);
    assert.equal(await tokens.settleOwed(UID, PC), false, 'still down');
    im.down = null;
    im.take();
    assert.equal(await tokens.settleOwed(UID, PC), true);
    assert.deepEqual(im.take(), [['quit', PC]]);
    assert.equal(await kv.get(key(PC)), null);
    assert.equal(await tokens.owes(UID), false);
  });
});

describe('the retry worker racing a login', () => {
  it('leaves the login\'s token live when its settling fails after the login took the flag', async () => {
    const { kv, im, live, tokens, value } = setup();
    await tokens.acquire(UID, WEB);
    im.down = new ImUnavailableError('down');
    await tokens.release(UID, WEB);
    im.down = null;
    const cad = kv.compareAndDelete.bind(kv);
    const login = 'd'.repeat(32);
    let raced = false;
    kv.compareAndDelete = async (k, expected) => {
      if (k === key(WEB) && !raced) {
        raced = true;
        // After the worker's quit, a login commits a token; then the IM server goes down.
        await kv.set(k, `live:${login}:n1`);
        live.add(WEB);
        im.down = new ImUnavailableError('down');
        return false;
      }
      return cad(k, expected);
    };
    assert.equal(await tokens.settleOwed(UID, WEB), false);
    assert.deepEqual(await value(WEB), { state: 'live', token: login }, 'the worker only settles owed tokens, never marks a login\'s');
  });
});

describe('releaseAll', () => {
  it('quits every device at once and commits every flag: deleted, or none for 60 s where there was none', async () => {
    const { kv, im, tokens } = setup();
    await tokens.acquire(UID, APP);
    await tokens.acquire(UID, WEB);
    im.take();
    assert.equal(await tokens.releaseAll(UID), 'ok');
    assert.deepEqual(im.take(), [['quit', -1]]);
    assert.equal(await kv.get(key(APP)), null);
    assert.equal(await kv.get(key(WEB)), null);
    assert.match((await kv.get(key(PC))) ?? '', /^none:/);
    const ttl = (await kv.pttl(key(PC))) ?? 0;
    assert.ok(ttl > 55_000 && ttl <= 60_000, `TTL ${ttl}`);
  });

  it('gives a flag that still has live sessions a fresh token, at its level', async () => {
    const { im, live, tokens, value } = setup();
    const web = await tokens.acquire(UID, WEB);
    const app = await tokens.acquire(UID, APP);
    live.add(WEB);
    live.add(APP);
    im.take();
    assert.equal(await tokens.releaseAll(UID), 'ok');
    const [webNow, appNow] = [await value(WEB), await value(APP)];
    assert.ok(webNow.state === 'live' && webNow.token !== web);
    assert.ok(appNow.state === 'live' && appNow.token !== app);
    const calls = im.take();
    assert.deepEqual(calls[0], ['quit', -1]);
    assert.deepEqual(calls.slice(1).sort(), [['update', APP, appNow.token, 'master'], ['update', WEB, webNow.token, 'slave']].sort());
  });

  it('an IM server down owes the quit of every flag, even where no token is held', async () => {
    const { im, tokens, queue, value } = setup();
    const web = await tokens.acquire(UID, WEB);
    im.down = new ImUnavailableError('down');
    im.attempts = 0;
    assert.equal(await tokens.releaseAll(UID), 'failed');
    assert.equal(im.attempts, 1, 'marked owed, not tried again flag by flag');
    assert.equal(await queue.size(), 3);
    assert.deepEqual(await value(WEB), { state: 'owed', token: web });
    assert.equal((await value(APP)).state, 'owed');
    assert.equal((await value(PC)).state, 'owed');
  });

  it('an update refused during the sweep settles that flag again: the IM server holds what is committed', async () => {
    for (const flag of [WEB, APP] as const) {
      const { im, live, tokens, value } = setup();
      await tokens.acquire(UID, flag);
      live.add(flag);
      im.nextUpdate = new ImUnavailableError('down');
      im.take();
      assert.equal(await tokens.releaseAll(UID), 'ok');
      const now = await value(flag);
      assert.equal(now.state, 'live');
      const pushed = now.state === 'live' ? now.token : '';
      // Web's settling release quits first; APP's pushes at level Master, which kicks by itself.
      const expected = flag === APP
        ? [['quit', -1], ['update', APP, pushed, 'master']]
        : [['quit', -1], ['quit', WEB], ['update', WEB, pushed, 'slave']];
      assert.deepEqual(im.take(), expected, `flag ${flag}`);
    }
  });

  it('a flag whose token another call removed meanwhile is committed again as none', async () => {
    const { kv, im, tokens } = setup();
    await tokens.acquire(UID, WEB);
    removedBefore(kv, 'compareAndDelete', WEB);
    im.take();
    assert.equal(await tokens.releaseAll(UID), 'ok');
    // The quit of every device may have landed after another's update: `none` makes that update's commit fail.
    assert.match((await kv.get(key(WEB))) ?? '', /^none:/);
    assert.deepEqual(im.take(), [['quit', -1]]);
  });

  it('with the IM server down, a first token committed meanwhile is the one marked owed, not overwritten', async () => {
    const { kv, im, tokens, value } = setup();
    const set = kv.set.bind(kv);
    const other = 'e'.repeat(32);
    let raced = false;
    kv.set = async (k, v, options) => {
      if (k === key(PC) && v.startsWith('owed:') && !raced) {
        raced = true;
        // A PC login commits its first token between the sweep's read and its owed mark.
        await set(k, `live:${other}:n1`);
      }
      return set(k, v, options);
    };
    im.down = new ImUnavailableError('down');
    assert.equal(await tokens.releaseAll(UID), 'failed');
    assert.deepEqual(await value(PC), { state: 'owed', token: other }, 'the token the IM server may hold is the one owed a quit');
  });

  it('with the IM server down, a flag whose token was removed before its owed mark is committed as none', async () => {
    const { kv, im, tokens } = setup();
    await tokens.acquire(UID, WEB);
    removedBefore(kv, 'compareAndSet', WEB);
    im.down = new ImUnavailableError('down');
    await tokens.releaseAll(UID);
    // The quit that timed out may still land: the settling release brackets it like any other.
    assert.match((await kv.get(key(WEB))) ?? '', /^none:/);
  });

  it('a flag the sweep cannot settle makes it fail', async () => {
    const { im, live, tokens } = setup();
    await tokens.acquire(UID, WEB);
    live.add(WEB);
    im.nextUpdate = new ImUnavailableError('down');
    im.afterRefusal = () => (im.down = new ImUnavailableError('down'));
    assert.equal(await tokens.releaseAll(UID), 'failed');
  });

  it('an update that fails otherwise during the sweep is thrown', async () => {
    const { im, live, tokens } = setup();
    await tokens.acquire(UID, WEB);
    live.add(WEB);
    const strange = new TypeError('strange');
    im.nextUpdate = strange;
    await assert.rejects(tokens.releaseAll(UID), (error) => error === strange);
  });

  it('any other error of the IM server is thrown', async () => {
    const { im, tokens } = setup();
    const strange = new TypeError('strange');
    im.down = strange;
    await assert.rejects(tokens.releaseAll(UID), (error) => error === strange);
  });
});
