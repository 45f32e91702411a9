import type { Kv } from '../../ports/kv.ts';
import type { Clock } from '../../ports/clock.ts';
import type { Random } from '../../ports/random.ts';
import type { AccountStatus } from '../../ports/accounts.ts';
import { accountDisabled } from '../errors.ts';
import { deviceSlotKey, lastSeenKey, sessionKey, userSessionsKey } from './keys.ts';
import { newSessionToken, sidOfPresentedToken } from './token.ts';
import type { DeviceFlag, DevicePolicies } from './policy.ts';
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
  readonly onEnded?: SessionEndedListener;
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
}

const MAX_TOUCH_ENTRIES = 100_000;

/**
 * The session core (DESIGN §3). Every invariant of §3.2 lives here, built only from single-key
 * Kv operations, so the interleaving explorer can check it call by call.
 */
export class SessionService {
  readonly #kv: Kv;
  readonly #options: SessionServiceOptions;
  /** sid → when this node last wrote its last_seen_at. */
  readonly #touchedAt = new Map<string, number>();

  constructor(options: SessionServiceOptions) {
    this.#kv = options.kv;
    this.#options = options;
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
      await this.#end(session.uid, sid, input.flag, 'ban');
      throw accountDisabled();
    }
    await this.#applyPolicy(session);
    return { token, session };
  }

  /** The session a presented token belongs to, or null. Reads the store every time (invariant 6). */
  async validate(token: string): Promise<Session | null> {
    const sid = sidOfPresentedToken(token);
    if (sid === null) return null;
    const raw = await this.#kv.get(sessionKey(sid));
    if (raw === null) return null;
    const session = parseSessionRecord(sid, raw);
    const now = this.#options.clock.now();
    if (session === null || session.expires_at <= now) return null;
    this.#touch(session, now);
    return session;
  }

  /** Ends the session of this token. Returns false if it had already ended. */
  async logout(session: Session): Promise<boolean> {
    return this.#end(session.uid, session.sid, session.device_flag, 'logout');
  }

  /** The user's live sessions, newest first; index entries of ended sessions are pruned. */
  async list(uid: string): Promise<ListedSession[]> {
    const entries = await this.#liveEntries(uid);
    const listed = await Promise.all(entries.map((entry) => this.#read(entry)));
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
    return this.#end(uid, sid, entry.flag, reason);
  }

  /** Revokes every session of the user but `keepSid`. Returns how many this call ended. */
  async revokeOthers(uid: string, keepSid: string): Promise<number> {
    return this.#endAll(uid, (entry) => entry.sid !== keepSid, 'others');
  }

  /** Revokes every session of the user (ban, password reset, admin). */
  async revokeAll(uid: string, reason: RevokeReason): Promise<number> {
    return this.#endAll(uid, () => true, reason);
  }

  /** Revokes the user's sessions that logged in from this device. */
  async revokeDevice(uid: string, deviceId: string): Promise<number> {
    const sessions = await this.list(uid);
    const ended = await Promise.all(
      sessions.filter((s) => s.device_id === deviceId).map((s) => this.#end(uid, s.sid, s.device_flag, 'device')),
    );
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
      older.slice(0, Math.max(0, excess)).map((entry) => this.#end(session.uid, entry.sid, entry.flag, 'cap')),
    );
  }

  /**
   * Whoever displaces a sid from the slot revokes it: of concurrent logins only the last writer of
   * the slot survives (invariant 3), and no login revokes by reading the index.
   */
  async #takeDeviceSlot(session: Session): Promise<void> {
    const slot = deviceSlotKey(session.uid, session.device_flag);
    const previous = await this.#kv.swap(slot, session.sid, { ttlMs: this.#options.ttlMs });
    if (previous !== null && previous !== session.sid) {
      await this.#end(session.uid, previous, session.device_flag, 'replaced');
    }
    // A revoke or ban that ended this session between joining the index and the swap could not
    // release a slot that did not name it yet: release it here (compare-and-delete, so a newer
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

  async #endAll(uid: string, select: (entry: IndexEntry) => boolean, reason: RevokeReason): Promise<number> {
    const entries = decodeIndex(await this.#kv.hgetall(userSessionsKey(uid))).filter(select);
    const ended = await Promise.all(entries.map((entry) => this.#end(uid, entry.sid, entry.flag, reason)));
    return ended.filter(Boolean).length;
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
    this.#kv.set(lastSeenKey(session.sid), String(now), { ttlMs }).catch(() => {
      // A lost last-seen write is harmless; the next request past the interval retries it.
      this.#touchedAt.delete(session.sid);
    });
  }
}

/** Total order on sessions: creation time, then sid. */
function isOlder(a: IndexEntry, b: IndexEntry): boolean {
  return a.createdAt < b.createdAt || (a.createdAt === b.createdAt && a.sid < b.sid);
}
