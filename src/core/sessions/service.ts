import type { Kv } from '../../ports/kv.ts';
import type { Clock } from '../../ports/clock.ts';
import type { Random } from '../../ports/random.ts';
import type { AccountStatus } from '../../ports/accounts.ts';
import { ImBannedError, ImUnavailableError, type ImBridge } from '../../ports/im-bridge.ts';
import { LatchkeyError, accountDisabled } from '../errors.ts';
import { deviceSlotKey, lastSeenKey, sessionKey, userSessionsKey } from './keys.ts';
import { newSessionToken, sidOfPresentedToken } from './token.ts';
import type { DeviceFlag, DevicePolicies } from './policy.ts';
import { ImContentionError, ImTokens, type ImOutcome } from './im-tokens.ts';
import { ImQuitQueue, type DrainReport, type ImQuitRetryOptions } from './im-quit-queue.ts';
import {
  decodeIndex,
  encodeIndexEntry,
  parseSessionRecord,
  type DeviceInfo,
  type IndexEntry,
  type ListedSession,
  type LoginMethod,
  type RevokeReason,
  type Session,
  type SessionRecord,
} from './record.ts';

/** Reads the account's current status; null when the account does not exist. */
export type AccountStatusReader = (uid: string) => Promise<AccountStatus | null>;

/** Told about every session that ended, once per session, by the call that ended it. */
export type SessionEndedListener = (session: Session, reason: RevokeReason) => void | Promise<void>;

export interface SessionServiceOptions {
  readonly kv: Kv;
  readonly clock: Clock;
  readonly random: Random;
  readonly policies: DevicePolicies;
  readonly ttlMs: number;
  readonly accountStatus: AccountStatusReader;
  /** last_seen_at is written at most this often per session (per node). */
  readonly touchIntervalMs?: number;
  /** A session unused this long ends (ASVS 7.3.1); 0 or absent: no inactivity timeout. */
  readonly idleTimeoutMs?: number;
  readonly onEnded?: SessionEndedListener;
  /** The IM server whose per-(uid, flag) token the sessions share (docs/design.md §3.4); none without it. */
  readonly im?: { readonly bridge: ImBridge; readonly quitRetry: ImQuitRetryOptions };
}

export interface IssueInput {
  readonly uid: string;
  readonly flag: DeviceFlag;
  readonly device: DeviceInfo;
  readonly method: LoginMethod;
  readonly ip: string;
  readonly userAgent: string;
}

export interface IssuedSession {
  readonly token: string;
  readonly session: Session;
  /** The IM token this session shares with its flag's other sessions; only with an IM bridge. */
  readonly imToken?: string;
}

export interface LogoutOutcome {
  /** False when the session had already ended. */
  readonly ended: boolean;
  /** Whether the IM server was told; null without an IM bridge or when nothing ended. */
  readonly im: ImOutcome | null;
}

const MAX_TOUCH_ENTRIES = 100_000;

/**
 * The session core (docs/design.md §3). Every invariant of §3.2 lives here, built only from single-key
 * Kv operations, so the interleaving explorer can check it call by call.
 */
export class SessionService {
  readonly #kv: Kv;
  readonly #options: SessionServiceOptions;
  /** sid → when this node last wrote its last_seen_at. */
  readonly #touchedAt = new Map<string, number>();
  readonly #im: ImTokens | null;
  readonly #owedQuits: ImQuitQueue | null;

  constructor(options: SessionServiceOptions) {
    this.#kv = options.kv;
    this.#options = options;
    const { im } = options;
    if (im === undefined) {
      this.#owedQuits = null;
      this.#im = null;
      return;
    }
    this.#owedQuits = new ImQuitQueue(options.kv, options.clock, im.quitRetry);
    this.#im = new ImTokens({
      kv: options.kv,
      bridge: im.bridge,
      random: options.random,
      policies: options.policies,
      ttlMs: options.ttlMs,
      hasLiveSession: (uid, flag) => this.#hasLiveSession(uid, flag),
      owedQuits: this.#owedQuits,
    });
  }

  /** The one place a session is created. */
  async issue(input: IssueInput): Promise<IssuedSession> {
    const { kv, clock, random, ttlMs } = this.#options;
    const { token, sid } = newSessionToken(random);
    const now = clock.now();
    const record: SessionRecord = {
      uid: input.uid,
      device_flag: input.flag,
      ...input.device,
      method: input.method,
      ip: input.ip,
      user_agent: input.userAgent,
      created_at: now,
      expires_at: now + ttlMs,
    };
    // NX: a sid is written once, at creation, and never again (invariant 1).
    if (!(await kv.set(sessionKey(sid), JSON.stringify(record), { nx: true, ttlMs }))) {
      throw new Error('session id collision');
    }
    await kv.hset(userSessionsKey(input.uid), sid, encodeIndexEntry(input.flag, now, record.expires_at));
    const session: Session = { sid, ...record };
    // Re-check the status only after joining the index: a ban that set the status earlier is seen
    // here, and a ban that sets it later sweeps the index and finds this session (invariant 5).
    if ((await this.#options.accountStatus(input.uid)) !== 'active') {
      await this.#endUnanswered(session, 'ban');
      throw accountDisabled();
    }
    await this.#applyPolicy(session);
    const imToken = await this.#acquireImToken(session);
    return imToken === null ? { token, session } : { token, session, imToken };
  }

  /** Ends a session whose login could not answer (its token was never handed out). */
  async abandon(session: Session): Promise<void> {
    await this.#endUnanswered(session, 'aborted');
  }

  /** The session a presented token belongs to, or null. Reads the store every time (invariant 6). */
  async validate(token: string): Promise<Session | null> {
    const sid = sidOfPresentedToken(token);
    if (sid === null) return null;
    const idleMs = this.#options.idleTimeoutMs ?? 0;
    // Without an inactivity timeout the hot path is one store read; with one, the last-seen stamp
    // is read in the same event-loop turn (the same MGET).
    const [raw, seen] = await Promise.all([
      this.#kv.get(sessionKey(sid)),
      idleMs > 0 ? this.#kv.get(lastSeenKey(sid)) : null,
    ]);
    if (raw === null) return null;
    const session = parseSessionRecord(sid, raw);
    const now = this.#options.clock.now();
    if (session === null || session.expires_at <= now) return null;
    if (idleMs > 0 && now - (seen === null ? session.created_at : Number(seen)) > idleMs) {
      await this.#endAndRelease(session.uid, session.sid, session.device_flag, 'idle');
      return null;
    }
    this.#touch(session, now);
    return session;
  }

  /** Ends the session of this token. Returns false if it had already ended. */
  async logout(session: Session): Promise<boolean> {
    return (await this.logoutWithOutcome(session)).ended;
  }

  /** Ends the session of this token and says whether the IM server heard of it (POST /v1/user/quit). */
  logoutWithOutcome(session: Session): Promise<LogoutOutcome> {
    return this.#endAndRelease(session.uid, session.sid, session.device_flag, 'logout');
  }

  /** The IM token the session's flag shares now (GET /v1/user/im_token); null without an IM bridge or token. */
  async imToken(session: Session): Promise<string | null> {
    return this.#im === null ? null : this.#im.current(session.uid, session.device_flag);
  }

  /** One pass of the retry queue of owed device_quit calls; null without an IM bridge. */
  async drainOwedImQuits(): Promise<DrainReport | null> {
    const im = this.#im;
    if (im === null || this.#owedQuits === null) return null;
    return this.#owedQuits.drain((uid, flag) => im.settleOwed(uid, flag));
  }

  /** How many (uid, flag) still owe the IM server a device_quit. */
  async owedImQuits(): Promise<number> {
    return this.#owedQuits === null ? 0 : this.#owedQuits.size();
  }

  /** Whether the user still owes the IM server a device_quit (it was down); null without an IM bridge. */
  async imQuitOwed(uid: string): Promise<boolean | null> {
    return this.#im === null ? null : this.#im.owes(uid);
  }

  /** The user's live sessions, newest first; index entries of ended sessions are pruned. */
  async list(uid: string): Promise<ListedSession[]> {
    const entries = await this.#liveEntries(uid);
    const listed = await Promise.all(entries.map((entry) => this.#read(entry)));
    // An entry whose record is gone names a session that ended while the cleanup after it failed
    // (a 503 part-way). A record is written once, before its entry, and never again: drop the entry.
    const dead = entries.filter((_, i) => listed[i] === null);
    await Promise.all(dead.map((entry) => this.#kv.hdel(userSessionsKey(uid), entry.sid)));
    return listed
      .filter((session): session is ListedSession => session !== null)
      .sort((a, b) => b.created_at - a.created_at);
  }

  /** Revokes one of the user's sessions. False if the sid is not a live session of this user. */
  async revoke(uid: string, sid: string, reason: RevokeReason = 'revoked'): Promise<boolean> {
    const flagValue = await this.#kv.hget(userSessionsKey(uid), sid);
    if (flagValue === null) return false;
    const [entry] = decodeIndex({ [sid]: flagValue });
    if (entry === undefined) return false;
    return (await this.#endAndRelease(uid, sid, entry.flag, reason)).ended;
  }

  /** Revokes every session of the user but `keepSid`. Returns how many this call ended. */
  async revokeOthers(uid: string, keepSid: string): Promise<number> {
    return this.#endAll(uid, (entry) => entry.sid !== keepSid, 'others');
  }

  /** Revokes every session of the user (ban, password reset, admin), and quits every IM device. */
  async revokeAll(uid: string, reason: RevokeReason): Promise<number> {
    return this.#endAll(uid, everySession, reason);
  }

  /** Revokes the user's sessions that logged in from this device. */
  async revokeDevice(uid: string, deviceId: string): Promise<number> {
    const sessions = (await this.list(uid)).filter((s) => s.device_id === deviceId);
    const ended = await Promise.all(sessions.map((s) => this.#end(uid, s.sid, s.device_flag, 'device')));
    await this.#releaseAfterSweep(uid, sessions.filter((_, i) => ended[i]).map((s) => s.device_flag));
    return ended.filter(Boolean).length;
  }

  async #applyPolicy(session: Session): Promise<void> {
    const policy = this.#options.policies[session.device_flag];
    if (policy.mode === 'exclusive') {
      await this.#takeDeviceSlot(session);
      return;
    }
    // Only sessions older than this one count against it, so two concurrent logins never evict
    // each other: of any pair, only the newer one can evict the older.
    const self: IndexEntry = { sid: session.sid, flag: session.device_flag, createdAt: session.created_at, expiresAt: session.expires_at };
    const older = (await this.#liveEntries(session.uid))
      .filter((entry) => entry.flag === session.device_flag && isOlder(entry, self))
      .sort((a, b) => (isOlder(a, b) ? -1 : 1));
    const excess = older.length + 1 - policy.cap;
    await Promise.all(
      older.slice(0, Math.max(0, excess)).map((entry) => this.#endAndRelease(session.uid, entry.sid, entry.flag, 'cap')),
    );
  }

  /**
   * Whoever displaces a sid from the slot revokes it: of concurrent logins only the last writer of
   * the slot survives (invariant 3), and no login revokes by reading the index.
   *
   * The slot holds its sid followed by the sids it displaced and has not ended yet
   * (`<sid> <owed>…`): a login that fails (store or IM down) after taking the slot but before
   * ending what it displaced leaves them named there, and the next login of the flag ends them.
   * Without that, the displaced session outlived every later login beside the new one.
   */
  async #takeDeviceSlot(session: Session): Promise<void> {
    const slot = deviceSlotKey(session.uid, session.device_flag);
    const { ttlMs } = this.#options;
    let previous: string | null;
    let taken: string;
    do {
      previous = await this.#kv.get(slot);
      taken = previous === null ? session.sid : `${session.sid} ${previous}`;
    } while (!(previous === null
      ? await this.#kv.set(slot, taken, { nx: true, ttlMs })
      : await this.#kv.compareAndSet(slot, previous, taken, { ttlMs })));
    const displaced = [...new Set(previous?.split(' ') ?? [])].filter((sid) => sid !== '' && sid !== session.sid);
    if (displaced.length > 0) {
      await Promise.all(displaced.map((sid) => this.#endAndRelease(session.uid, sid, session.device_flag, 'replaced')));
      // All ended: the slot names this session alone, unless a newer login took it meanwhile (it
      // carries the list on and ends them again, harmlessly).
      await this.#kv.compareAndSet(slot, taken, session.sid, { keepTtl: true });
    }
    // A revoke or ban that ended this session between joining the index and taking the slot could
    // not release a slot that did not name it yet: release it here (compare-and-delete, so a newer
    // login's slot survives).
    if ((await this.#kv.get(sessionKey(session.sid))) === null) {
      await this.#kv.compareAndDelete(slot, session.sid);
    }
  }

  /**
   * Ends one session. GETDEL of the record is the step that ends it; everything after cleans up
   * keys that only this session owns (index field, last-seen) or that it may no longer own, which
   * are released by compare-and-delete so a concurrent login's slot survives (invariant 2).
   */
  async #end(uid: string, sid: string, flag: DeviceFlag, reason: RevokeReason): Promise<boolean> {
    const kv = this.#kv;
    const raw = await kv.getdel(sessionKey(sid));
    await kv.hdel(userSessionsKey(uid), sid);
    if (this.#options.policies[flag].mode === 'exclusive') {
      await kv.compareAndDelete(deviceSlotKey(uid, flag), sid);
    }
    await kv.del(lastSeenKey(sid));
    this.#touchedAt.delete(sid);
    const session = raw === null ? null : parseSessionRecord(sid, raw);
    if (session !== null) await this.#options.onEnded?.(session, reason);
    return session !== null;
  }

  /** Ends one session, then settles its flag's IM token (docs/design.md §3.4): deleted if it was the last, else rotated. */
  async #endAndRelease(uid: string, sid: string, flag: DeviceFlag, reason: RevokeReason): Promise<LogoutOutcome> {
    const ended = await this.#end(uid, sid, flag, reason);
    const im = ended && this.#im !== null ? await this.#im.release(uid, flag) : null;
    return { ended, im };
  }

  /**
   * Undoes a login before it answers. Its session never had the flag's IM token, but while it was
   * indexed another call may have rotated one in for it: a token no live session holds goes too.
   */
  async #endUnanswered(session: Session, reason: RevokeReason): Promise<void> {
    if (await this.#end(session.uid, session.sid, session.device_flag, reason)) {
      await this.#im?.releaseUnheld(session.uid, session.device_flag);
    }
  }

  async #endAll(uid: string, select: (entry: IndexEntry) => boolean, reason: RevokeReason): Promise<number> {
    const entries = decodeIndex(await this.#kv.hgetall(userSessionsKey(uid))).filter(select);
    const ended = await Promise.all(entries.map((entry) => this.#end(uid, entry.sid, entry.flag, reason)));
    // Selecting everything (ban, password reset, revoke-all) quits every IM device, indexed or not.
    await this.#releaseAfterSweep(uid, select === everySession ? 'all' : entries.filter((_, i) => ended[i]).map((entry) => entry.flag));
    return ended.filter(Boolean).length;
  }

  /**
   * One IM step per flag after a sweep, not one per session: N sessions of a flag ending together
   * would otherwise rotate its token N times. Ending them all quits every device at once (-1).
   */
  async #releaseAfterSweep(uid: string, flags: readonly DeviceFlag[] | 'all'): Promise<void> {
    const im = this.#im;
    if (im === null) return;
    if (flags === 'all') {
      await im.releaseAll(uid);
      return;
    }
    await Promise.all([...new Set(flags)].map((flag) => im.release(uid, flag)));
  }

  /**
   * The session's IM token, once it is indexed and its policy applied (a device it replaced or
   * evicted has released the flag's token first). An IM server that refuses or cannot be reached
   * fails the login and leaves nothing behind: the IM step commits nothing the IM server did not
   * take, and the session, its index entry and its slot are removed again (compare-and-delete).
   */
  async #acquireImToken(session: Session): Promise<string | null> {
    const im = this.#im;
    if (im === null) return null;
    let imToken: string;
    try {
      imToken = await im.acquire(session.uid, session.device_flag);
    } catch (error) {
      await this.#endUnanswered(session, 'aborted');
      throw imLoginError(error);
    }
    // A revoke or ban that ended this session while it acquired may have released the flag before
    // this token was committed: release it again. Whichever of the two looks last sees the other.
    if ((await this.#kv.get(sessionKey(session.sid))) === null) await im.release(session.uid, session.device_flag);
    return imToken;
  }

  /**
   * Whether a session of this flag is live. The record decides, not the index: a session another
   * call has just ended (its record gone, its index entry not yet) must not keep a token alive.
   */
  async #hasLiveSession(uid: string, flag: DeviceFlag): Promise<boolean> {
    for (const entry of await this.#liveEntries(uid)) {
      if (entry.flag === flag && (await this.#kv.get(sessionKey(entry.sid))) !== null) return true;
    }
    return false;
  }

  /** Index entries not yet past their expiry; expired ones are dropped from the index. */
  async #liveEntries(uid: string): Promise<IndexEntry[]> {
    const now = this.#options.clock.now();
    const entries = decodeIndex(await this.#kv.hgetall(userSessionsKey(uid)));
    const expired = entries.filter((entry) => entry.expiresAt <= now);
    await Promise.all(expired.map((entry) => this.#kv.hdel(userSessionsKey(uid), entry.sid)));
    return entries.filter((entry) => entry.expiresAt > now);
  }

  async #read(entry: IndexEntry): Promise<ListedSession | null> {
    const [raw, seen] = await Promise.all([this.#kv.get(sessionKey(entry.sid)), this.#kv.get(lastSeenKey(entry.sid))]);
    const session = raw === null ? null : parseSessionRecord(entry.sid, raw);
    if (session === null) return null;
    return { ...session, last_seen_at: seen === null ? session.created_at : Number(seen) };
  }

  /** Writes last_seen_at at most once per interval; never on every request, never blocking it. */
  #touch(session: Session, now: number): void {
    const interval = this.#options.touchIntervalMs ?? 60_000;
    const last = this.#touchedAt.get(session.sid);
    if (last !== undefined && now - last < interval) return;
    if (this.#touchedAt.size >= MAX_TOUCH_ENTRIES) this.#touchedAt.clear();
    this.#touchedAt.set(session.sid, now);
    const ttlMs = session.expires_at - now;
    const key = lastSeenKey(session.sid);
    const stamp = String(now);
    this.#kv.set(key, stamp, { ttlMs })
      // A logout between the validation and this write deleted the key before it was written, and
      // the write would outlive the session by up to its whole lifetime. Looking after writing:
      // whichever of the two runs second removes the key.
      .then(async () => {
        if ((await this.#kv.get(sessionKey(session.sid))) === null) await this.#kv.compareAndDelete(key, stamp);
      })
      .catch(() => {
        // A lost last-seen write is harmless; the next request past the interval retries it.
        this.#touchedAt.delete(session.sid);
      });
  }
}

const everySession = (): boolean => true;

/** What a login answers when the IM server refused it or could not be told. */
function imLoginError(error: unknown): unknown {
  if (error instanceof ImBannedError) return accountDisabled();
  if (error instanceof ImUnavailableError || error instanceof ImContentionError) {
    return new LatchkeyError('upstream_unavailable', 'the IM server is unavailable; try again shortly');
  }
  return error;
}

/** Total order on sessions: creation time, then sid. */
function isOlder(a: IndexEntry, b: IndexEntry): boolean {
  return a.createdAt < b.createdAt || (a.createdAt === b.createdAt && a.sid < b.sid);
}
