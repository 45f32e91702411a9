import type { Kv } from '../../ports/kv.ts';
import type { Random } from '../../ports/random.ts';
import { ImBannedError, ImUnavailableError, type ImBridge, type ImDeviceLevel } from '../../ports/im-bridge.ts';
import { imTokenKey } from './keys.ts';
import { DEVICE_FLAGS, type DeviceFlag, type DevicePolicies } from './policy.ts';
import { encodeImTokenValue, newImToken, parseImTokenValue, type ImTokenValue } from './im-token-value.ts';
import type { ImQuitQueue } from './im-quit-queue.ts';

export interface ImTokensOptions {
  readonly kv: Kv;
  readonly bridge: ImBridge;
  readonly random: Random;
  readonly policies: DevicePolicies;
  readonly ttlMs: number;
  /** Whether the user has a live session of this flag (indexed, and its record still there). */
  readonly hasLiveSession: (uid: string, flag: DeviceFlag) => Promise<boolean>;
  readonly owedQuits: ImQuitQueue;
}

/** A login's own token as the IM token (compat.octo's Web and PC): pushed as is, kept as its tag. */
export interface OwnImToken {
  readonly push: string;
  readonly keep: string;
}

/** Whether the IM server was told (a logout still ends the API session when it was not). */
export type ImOutcome = 'ok' | 'failed';

/** The token kept changing under every attempt: someone else is settling this flag right now. */
export class ImContentionError extends Error {
  override readonly name = 'ImContentionError';
}

/** Each failed attempt means another call changed the token meanwhile; with a handful racing, 8 is plenty. */
const MAX_ATTEMPTS = 8;
/** A `none` value only has to outlive the calls racing the one that wrote it. */
const NONE_TTL_MS = 60_000;

const NONE: ImTokenValue = { state: 'none' };

/**
 * How a release runs. `owedOnly`: act only on an owed token (the retry worker). `unheld`: the ended
 * session never got the token (a login undone or refused): the others keep theirs, only a token no
 * live session holds is removed. `dirty`: an IM call of this caller may already have landed
 * unbracketed (its commit failed), so even "nothing to do" commits, and a token it may have undone
 * is replaced.
 */
interface ReleaseMode {
  readonly owedOnly: boolean;
  readonly unheld: boolean;
  readonly dirty: boolean;
  /** The token the ended session itself committed (a login that ended before it answered). */
  readonly committed?: string;
}

/** A release with no special case: not only owed tokens, held ones too, and nothing known dirty. */
const PLAIN_RELEASE: ReleaseMode = { owedOnly: false, unheld: false, dirty: false };

/** What one attempt of a release does: IM calls, then the value it commits (null: delete). */
interface ReleasePlan {
  readonly quit: boolean;
  readonly push: string | null;
  readonly next: ImTokenValue | null;
}

/**
 * The shared per-(uid, flag) IM token protocol (docs/design.md §3.4), the one octo-server's PR #225 is about.
 * WuKongIM keeps one token per (uid, flag); all live sessions of a flag share the one latchkey keeps
 * in `user:{uid}:im:<flag>`.
 *
 * Every step tells the IM server FIRST and then commits the matching value with ONE conditional Kv
 * write (set NX, compare-and-set, compare-and-delete) against the value it read before telling it.
 * The nonce in the value (im-token-value.ts) makes any write in between fail that commit, so a
 * committed step knows nobody committed between its read and its commit: the IM calls of committed
 * steps reach the IM server in the order of their commits, and the IM server ends up holding what
 * the last commit says. A step whose commit fails may have undone another's IM call with its own
 * (a device_quit landing after a concurrent login's update, or an update bringing back a token
 * someone has just ended): it starts again from a fresh read, kicks the flag first where a token
 * it pushed could have ended meanwhile, and commits again even when there is nothing left to do,
 * so that its stray calls are bracketed like any other. Hence invariant 4 (a deleted IM token is
 * never written again): never into the key, and at the IM server never beyond the request that
 * wrote it there. A fresh token a failed step pushed and never committed may stay stored at the IM
 * server; nobody was handed it, so nothing can connect with it.
 */
export class ImTokens {
  readonly #options: ImTokensOptions;
  readonly #bridge: ImBridge;

  constructor(options: ImTokensOptions) {
    this.#options = options;
    this.#bridge = watchedBridge(options.bridge, options.owedQuits);
  }

  /**
   * At login, once the session is indexed: the token this session shares. A live token of a multi
   * flag is reused (re-confirmed with a compare-and-set: SET XX that also fails when the token was
   * replaced or refreshed meanwhile); otherwise a fresh one is created. Exclusive flags never
   * share: each login gets a fresh token at level Master, which kicks the device before it.
   * Throws ImUnavailableError, ImBannedError or ImContentionError; then nothing was committed.
   *
   * `own` (exclusive flags only): the login's own token is pushed instead of a fresh one, and `keep`
   * (its tag, never the token) is committed. Nothing ever pushes a stored token of an exclusive
   * flag again (a release pushes only fresh ones), so the store need not hold the token itself.
   */
  async acquire(uid: string, flag: DeviceFlag, own?: OwnImToken): Promise<string> {
    const { kv, random } = this.#options;
    const bridge = this.#bridge;
    const key = imTokenKey(uid, flag);
    const exclusive = this.#exclusive(flag);
    if (own !== undefined && !exclusive) throw new Error('a session token can be the IM token of an exclusive flag only');
    let pushed: string | null = null;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const raw = await kv.get(key);
      const current = parseImTokenValue(raw);
      if (own !== undefined) {
        await bridge.updateToken({ uid, token: own.push, flag, level: 'master' });
        if (await this.#commit(key, raw, { state: 'live', token: own.keep })) return own.keep;
        continue;
      }
      const token = !exclusive && current.state === 'live' ? current.token : newImToken(random);
      // A Slave update does not kick: an owed quit, or a token we pushed that someone ended while we
      // did, could still hold a connection. A Master update kicks by itself.
      if (!exclusive && (current.state === 'owed' || (pushed !== null && pushed !== token))) {
        await bridge.deviceQuit(uid, flag);
      }
      await bridge.updateToken({ uid, token, flag, level: this.#level(flag) });
      pushed = token;
      if (await this.#commit(key, raw, { state: 'live', token })) return token;
    }
    throw new ImContentionError('the IM token kept changing during this login');
  }

  /**
   * After a session of `flag` ended (and left the index): the last session of the flag deletes the
   * token and quits the device; otherwise the token is rotated (device_quit, then the remaining
   * sessions' new token, which their clients fetch with GET /v1/user/im_token), so the ended
   * client's copy dies. When the IM server cannot be told, the token is marked owed (no login
   * reuses it) and the retry queue re-sends the device_quit; the outcome is then 'failed'.
   */
  release(uid: string, flag: DeviceFlag): Promise<ImOutcome> {
    return this.#release(uid, flag, PLAIN_RELEASE);
  }

  /**
   * After a login whose session ended before it answered (replaced, revoked, banned meanwhile):
   * `committed` is the token its acquire committed. On an exclusive flag the session that replaced
   * it may have pushed before that commit, so the ended login's token may be the one the IM server
   * holds: then it is replaced by a fresh one (level master kicks it), never left connecting.
   */
  releaseCommitted(uid: string, flag: DeviceFlag, committed: string): Promise<ImOutcome> {
    return this.#release(uid, flag, { ...PLAIN_RELEASE, committed });
  }

  /**
   * After a login was undone or refused before it answered: its session never had the token, so
   * the other sessions of the flag keep theirs; a token no live session holds (another call may
   * have rotated one in while this login was indexed) is removed.
   */
  releaseUnheld(uid: string, flag: DeviceFlag): Promise<ImOutcome> {
    return this.#release(uid, flag, { ...PLAIN_RELEASE, unheld: true });
  }

  /** For the retry worker: settles (uid, flag) if a device_quit is still owed. True when nothing is owed any more. */
  async settleOwed(uid: string, flag: DeviceFlag): Promise<boolean> {
    return (await this.#release(uid, flag, { ...PLAIN_RELEASE, owedOnly: true })) === 'ok';
  }

  /**
   * Ban, password reset, revoke-all: one device_quit for every flag (-1), committed flag by flag
   * (the token deleted, or `none` where there was none, so a first token created meanwhile is not
   * left undone by the quit); a flag whose value moved meanwhile is settled again on its own.
   */
  async releaseAll(uid: string): Promise<ImOutcome> {
    const { kv } = this.#options;
    const bridge = this.#bridge;
    const raws = await Promise.all(DEVICE_FLAGS.map((flag) => kv.get(imTokenKey(uid, flag))));
    try {
      await bridge.deviceQuit(uid, -1);
    } catch (error) {
      if (!(error instanceof ImUnavailableError)) throw error;
      await Promise.all(DEVICE_FLAGS.map((flag, i) => this.#oweOrRelease(uid, flag, raws[i] ?? null)));
      return 'failed';
    }
    const outcomes = await Promise.all(DEVICE_FLAGS.map(async (flag, i) => {
      const raw = raws[i] ?? null;
      // Sessions that logged in meanwhile (not a ban's: those are refused or swept) keep a token.
      const plan = await this.#planRelease(uid, flag, parseImTokenValue(raw), { ...PLAIN_RELEASE, dirty: true });
      try {
        if (plan !== null && plan.push !== null) await bridge.updateToken({ uid, token: plan.push, flag, level: this.#level(flag) });
      } catch (error) {
        if (!(error instanceof ImUnavailableError || error instanceof ImBannedError)) throw error;
        return this.#release(uid, flag, { ...PLAIN_RELEASE, dirty: true });
      }
      if (plan === null || (await this.#commit(imTokenKey(uid, flag), raw, plan.next))) return 'ok';
      return this.#release(uid, flag, { ...PLAIN_RELEASE, dirty: true });
    }));
    return outcomes.includes('failed') ? 'failed' : 'ok';
  }

  /** Whether a device_quit of this user is still owed to the IM server, for any flag. */
  async owes(uid: string): Promise<boolean> {
    const raws = await Promise.all(DEVICE_FLAGS.map((flag) => this.#options.kv.get(imTokenKey(uid, flag))));
    return raws.some((raw) => parseImTokenValue(raw).state === 'owed');
  }

  /** The token a live session of this flag shares, or null (none yet, or a quit is owed). */
  async current(uid: string, flag: DeviceFlag): Promise<string | null> {
    const value = parseImTokenValue(await this.#options.kv.get(imTokenKey(uid, flag)));
    return value.state === 'live' ? value.token : null;
  }

  async #release(uid: string, flag: DeviceFlag, initial: ReleaseMode): Promise<ImOutcome> {
    const { owedOnly } = initial;
    let { dirty } = initial;
    const { kv } = this.#options;
    const bridge = this.#bridge;
    const key = imTokenKey(uid, flag);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const raw = await kv.get(key);
      const current = parseImTokenValue(raw);
      const plan = await this.#planRelease(uid, flag, current, { ...initial, dirty });
      if (plan === null) return 'ok';
      try {
        if (plan.quit) await bridge.deviceQuit(uid, flag);
        if (plan.push !== null) await bridge.updateToken({ uid, token: plan.push, flag, level: this.#level(flag) });
      } catch (error) {
        // Banned at the IM server: the quit went through, and nobody can connect with the new token anyway.
        if (!(error instanceof ImBannedError)) {
          if (!(error instanceof ImUnavailableError)) throw error;
          // A call that timed out may still have landed.
          dirty = true;
          if (owedOnly || current.state === 'none') return 'failed';
          if (await this.#owe(uid, flag, raw, current)) return 'failed';
          continue;
        }
      }
      if (await this.#commit(key, raw, plan.next)) return 'ok';
      dirty = dirty || plan.quit || plan.push !== null;
    }
    return 'failed';
  }

  /** What a release does about `current`; null when there is nothing to do. */
  async #planRelease(uid: string, flag: DeviceFlag, current: ImTokenValue, mode: ReleaseMode): Promise<ReleasePlan | null> {
    const { owedOnly, unheld, dirty } = mode;
    // Nothing held: whoever removed the token quit the device before committing the removal.
    if (current.state === 'none') return dirty ? { quit: false, push: null, next: NONE } : null;
    if (owedOnly && current.state !== 'owed' && !dirty) return null;
    const others = await this.#options.hasLiveSession(uid, flag);
    if (others && unheld && !dirty) return null;
    const fresh = newImToken(this.#options.random);
    if (others && this.#exclusive(flag)) {
      // The other session is the login that replaced this one: it pushes a fresh token at level
      // Master, which kicks this device. A quit of ours that may have landed after that push is
      // undone with a fresh token of our own (the current one may still be the ended device's).
      // So is a token this ended login committed after the replacing login had pushed its own.
      const ours = mode.committed !== undefined && current.state === 'live' && current.token === mode.committed;
      return dirty || ours ? { quit: false, push: fresh, next: { state: 'live', token: fresh } } : null;
    }
    if (!others) return { quit: true, push: null, next: null };
    return { quit: true, push: fresh, next: { state: 'live', token: fresh } };
  }

  /**
   * The one conditional write that commits a step, against the value read before its IM calls:
   * `next` null deletes, anything else is written with a new nonce. Nothing read (the key absent)
   * commits with SET NX, so even "still nothing" conflicts with a concurrent first token.
   */
  async #commit(key: string, raw: string | null, next: ImTokenValue | null): Promise<boolean> {
    const { kv, random, ttlMs } = this.#options;
    const value = encodeImTokenValue(next ?? NONE, random);
    const ttl = next === null || next.state === 'none' ? NONE_TTL_MS : ttlMs;
    if (raw === null) return kv.set(key, value, { nx: true, ttlMs: ttl });
    if (next === null) return kv.compareAndDelete(key, raw);
    return kv.compareAndSet(key, raw, value, { ttlMs: ttl });
  }

  /**
   * The IM server could not be told: the token is dead to latchkey from now on (no login reuses an
   * owed token; the next login of the flag kicks it), and the retry queue re-sends the device_quit.
   * False when the value changed meanwhile (decide again).
   *
   * The job is queued before the token is marked: a node that stops in between leaves a job that
   * finds nothing owed (and is dropped), never an owed token no worker looks at. The owed value
   * keeps no TTL: WuKongIM's token has no lifetime, so the marker must last until the quit lands.
   *
   * Where nothing is held (releaseAll only) the quit is owed all the same: WuKongIM may still hold a
   * token whose key expired here with its sessions, and a ban must reach it. A fresh token that
   * nobody is ever given stands in as the owed one.
   */
  async #owe(uid: string, flag: DeviceFlag, raw: string | null, current: ImTokenValue): Promise<boolean> {
    const { kv, random, owedQuits } = this.#options;
    await owedQuits.enqueue(uid, flag);
    if (current.state === 'owed') return true;
    const token = current.state === 'live' ? current.token : newImToken(random);
    const owed = encodeImTokenValue({ state: 'owed', token }, random);
    const key = imTokenKey(uid, flag);
    return raw === null ? kv.set(key, owed, { nx: true }) : kv.compareAndSet(key, raw, owed);
  }

  /** For releaseAll when the IM server is down: mark every flag's device_quit owed, deciding again if the value moved. */
  async #oweOrRelease(uid: string, flag: DeviceFlag, raw: string | null): Promise<void> {
    if (!(await this.#owe(uid, flag, raw, parseImTokenValue(raw)))) await this.#release(uid, flag, { ...PLAIN_RELEASE, dirty: true });
  }

  #exclusive(flag: DeviceFlag): boolean {
    return this.#options.policies[flag].mode === 'exclusive';
  }

  /** Master kicks the device before it: exclusive flags have one device at a time. */
  #level(flag: DeviceFlag): ImDeviceLevel {
    return this.#exclusive(flag) ? 'master' : 'slave';
  }
}

/**
 * The bridge as ImTokens calls it, telling the retry queue when the IM server fails and when it
 * answers again (ImBannedError is an answer), so owed quits are re-sent as soon as it is back.
 */
function watchedBridge(bridge: ImBridge, owedQuits: ImQuitQueue): ImBridge {
  const watch = async (call: () => Promise<void>): Promise<void> => {
    try {
      await call();
    } catch (error) {
      if (error instanceof ImUnavailableError) owedQuits.imFailed();
      if (error instanceof ImBannedError) owedQuits.imAnswered();
      throw error;
    }
    owedQuits.imAnswered();
  };
  return {
    updateToken: (update) => watch(() => bridge.updateToken(update)),
    deviceQuit: (uid, flag) => watch(() => bridge.deviceQuit(uid, flag)),
  };
}
