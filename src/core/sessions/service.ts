import type { Kv } from '../../ports/kv.ts';
import { LatchkeyError, accountDisabled, sessionLimitReached } from '../errors.ts';
import { endedKey, lastSeenKey, limitSlotKey, sessionKey, userSessionsKey } from './keys.ts';
import { parseTombstone, tombstone, type EndedDetails } from './tombstone.ts';
import { releaseDeviceSlot, takeDeviceSlot } from './device-slot.ts';
import { LastSeenStamps } from './last-seen.ts';
import { newSessionToken, sidOfPresentedToken } from './token.ts';
import type { DeviceFlag, SessionLimit } from './policy.ts';
import { joinSlot, releaseSlot, type LimitSlotDeps, type SlotMember } from './limit-slot.ts';
import { NO_IM, createSessionIm, type SessionIm } from './session-im.ts';
import { sessionTokenTag } from './im-token-value.ts';
import { decodeIndex, decodeIndexEntry, encodeIndexEntry, parseSessionRecord, type IndexEntry, type ListedSession, type RevokeReason, type Session, type SessionRecord } from './record.ts';
import type { IssueInput, IssuedSession, LogoutOutcome, SessionServiceOptions } from './service-types.ts';

export type { AccountStatusReader, IssueInput, IssuedSession, LogoutOutcome, SessionEndedListener, SessionServiceOptions } from './service-types.ts';

/** Fresh tokens drawn when the first one's sid is taken (256 random bits: only a broken random source gets here). */
const MAX_ISSUE_ATTEMPTS = 3;

/**
 * The session core (docs/design.md §3). Every invariant of §3.2 lives here, built only from single-key
 * Kv operations, so the interleaving explorer can check it call by call. The IM protocol is its own
 * module (session-im.ts), called at a login's IM step and after sessions end.
 */
export class SessionService {
  readonly #kv: Kv;
  readonly #options: SessionServiceOptions;
  readonly #lastSeen: LastSeenStamps;
  /** The IM side of every session (session-im.ts): the current token, the device_quit calls owed. */
  readonly im: SessionIm;
  /** Flags whose session token is also the IM token (compat.octo's Web and PC). */
  readonly #sessionTokenFlags: ReadonlySet<DeviceFlag>;

  constructor(options: SessionServiceOptions) {
    this.#kv = options.kv;
    this.#options = options;
    this.#lastSeen = new LastSeenStamps(options.kv, options.touchIntervalMs ?? 60_000);
    const { im } = options;
    this.#sessionTokenFlags = new Set(im?.sessionTokenFlags ?? []);
    for (const flag of this.#sessionTokenFlags) {
      // A released token of a multi flag is rotated and re-pushed: a session token must never be.
      if (options.policies[flag].mode !== 'exclusive') throw new Error(`device flag ${flag} shares its IM token: it cannot be a session token`);
    }
    this.im = im === undefined
      ? NO_IM
      : createSessionIm({ ...options, ...im, hasLiveSession: (uid, flag) => this.#hasLiveSession(uid, flag) });
  }

  /** The one place a session is created. */
  async issue(input: IssueInput): Promise<IssuedSession> {
    const { token, session } = await this.#create(input);
    // Re-check the status only after joining the index: a ban that set the status earlier is seen
    // here, and a ban that sets it later sweeps the index and finds this session (invariant 5).
    if ((await this.#options.accountStatus(input.uid)) !== 'active') {
      await this.#undo(session, 'ban');
      throw accountDisabled();
    }
    // Session limits (docs/design.md §3.2, 7): a full reject_new limit refuses the login before the
    // device policy or an evicting limit has ended anything, and before the IM server hears of it.
    try {
      const refused = await this.#reserveSeats(session);
      if (refused !== null) {
        await this.#refuse(session);
        throw sessionLimitReached(refused);
      }
      await this.#applyPolicy(session);
      await this.#joinEvicting(session);
    } catch (error) {
      // Nobody holds the token yet: a login that could not settle its limits is undone, so it holds
      // no seat. (A store that is down fails the undo too; the session then expires unused.)
      if (!(error instanceof LatchkeyError && error.code === 'session_limit')) await this.#undo(session, 'aborted').catch(() => undefined);
      throw error;
    }
    let imToken: string | null;
    try {
      const own = this.#sessionTokenFlags.has(session.device_flag) ? { push: token, keep: sessionTokenTag(session.sid) } : undefined;
      imToken = await this.im.loginStep(session.uid, session.device_flag, () => this.#isLive(session.sid), own);
    } catch (error) {
      // The IM server refused or was not told: the login leaves nothing behind.
      await this.#undo(session, 'aborted');
      throw error;
    }
    return imToken === null ? { token, session } : { token, session, imToken };
  }

  /** Writes the record (NX: a sid is written once, at creation, and never again: invariant 1), then its index entry. */
  async #create(input: IssueInput): Promise<{ token: string; session: Session }> {
    const { kv, clock, random, ttlMs } = this.#options;
    for (let attempt = 0; attempt < MAX_ISSUE_ATTEMPTS; attempt++) {
      const { token, sid } = newSessionToken(random);
      const now = clock.now();
      const record = this.#record(input, now, ttlMs);
      // Expiry is no call that could say why the session ended: it is said in advance, outliving
      // the record by the retention (a later end overwrites it).
      const retentionMs = this.#options.endedRetentionMs ?? 0;
      if (retentionMs > 0) await kv.set(endedKey(sid), JSON.stringify(tombstone('idle', record.expires_at)), { ttlMs: ttlMs + retentionMs });
      if (!(await kv.set(sessionKey(sid), JSON.stringify(record), { nx: true, ttlMs }))) continue;
      await kv.hset(userSessionsKey(input.uid), sid, encodeIndexEntry(input.flag, now, record.expires_at));
      return { token, session: { sid, ...record } };
    }
    throw new LatchkeyError('internal_error', 'no unused session id could be drawn');
  }

  #record(input: IssueInput, now: number, ttlMs: number): SessionRecord {
    return {
      uid: input.uid,
      device_flag: input.flag,
      ...input.device,
      method: input.method,
      ip: input.ip,
      user_agent: input.userAgent,
      created_at: now,
      expires_at: now + ttlMs,
      ...(input.amr === undefined ? {} : { amr: input.amr }),
      ...(input.passkeyId === undefined ? {} : { passkey_id: input.passkeyId }),
    };
  }

  /** Ends a session whose login could not answer (its token was never handed out). */
  async abandon(session: Session): Promise<void> {
    await this.#undo(session, 'aborted');
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
    this.#lastSeen.touch(session, now);
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
    const value = await this.#kv.hget(userSessionsKey(uid), sid);
    const entry = value === null ? null : decodeIndexEntry(sid, value);
    if (entry === null) return false;
    return (await this.#endAndRelease(uid, sid, entry.flag, reason)).ended;
  }

  /** Revokes every session of the user but `keepSid`. Returns how many this call ended. */
  async revokeOthers(uid: string, keepSid: string, reason: 'others' | 'password_changed' = 'others'): Promise<number> {
    const entries = (await this.#indexEntries(uid)).filter((entry) => entry.sid !== keepSid);
    const ended = await this.#endEach(uid, entries, reason);
    await this.im.sweepEnded(uid, ended.map((entry) => entry.flag));
    return ended.length;
  }

  /**
   * Revokes every session of the user (ban, password reset, admin), and quits every IM device,
   * indexed or not.
   */
  async revokeAll(uid: string, reason: RevokeReason): Promise<number> {
    const ended = await this.#endEach(uid, await this.#indexEntries(uid), reason);
    await this.im.sweepEnded(uid, 'every device');
    return ended.length;
  }

  /** Revokes the user's sessions that logged in from this device. */
  revokeDevice(uid: string, deviceId: string): Promise<number> {
    return this.#revokeListed(uid, (s) => s.device_id === deviceId, 'device');
  }

  /**
   * Revokes the user's sessions that this passkey signed in (its removal). Call it after the
   * passkey is gone: a login with it that joins the index later sees it gone and undoes itself
   * (flows/mfa/passkeys.ts), one that joined earlier is found here (docs/design.md §3.2, invariant 5).
   */
  revokePasskey(uid: string, passkeyId: string): Promise<number> {
    return this.#revokeListed(uid, (s) => s.passkey_id === passkeyId, 'passkey_removed');
  }

  /** Revokes the user's live sessions whose record matches; returns how many this call ended. */
  async #revokeListed(uid: string, matches: (session: Session) => boolean, reason: RevokeReason): Promise<number> {
    const entries = (await this.list(uid))
      .filter(matches)
      .map((s) => ({ sid: s.sid, flag: s.device_flag, createdAt: s.created_at, expiresAt: s.expires_at }));
    const ended = await this.#endEach(uid, entries, reason);
    await this.im.sweepEnded(uid, ended.map((entry) => entry.flag));
    return ended.length;
  }

  async #applyPolicy(session: Session): Promise<void> {
    const policy = this.#options.policies[session.device_flag];
    if (policy.mode === 'exclusive') {
      await takeDeviceSlot(this.#kv, session, this.#options.ttlMs, (sid) => this.#endAndRelease(session.uid, sid, session.device_flag, 'replaced', session));
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
      older.slice(0, Math.max(0, excess)).map((entry) => this.#endAndRelease(session.uid, entry.sid, entry.flag, 'cap', session)),
    );
  }

  /** The limits counting this flag with this on_exceed, in configured order. */
  #limitsOf(flag: DeviceFlag, onExceed: SessionLimit['onExceed']): SessionLimit[] {
    return (this.#options.limits ?? []).filter((limit) => limit.onExceed === onExceed && limit.flags.includes(flag));
  }

  /**
   * Seeding takes only sessions older than the joining one: those made before the limit existed
   * are, while a concurrent login newer than this one joins by itself (counting it here too would
   * let concurrent reject_new logins refuse each other, all of them).
   */
  #slotDeps(session: Session, limit: SessionLimit): LimitSlotDeps {
    const joining: IndexEntry = { sid: session.sid, flag: session.device_flag, createdAt: session.created_at, expiresAt: session.expires_at };
    return {
      kv: this.#kv,
      ttlMs: this.#options.ttlMs,
      seed: async () => (await this.#liveEntries(session.uid))
        .filter((entry) => limit.flags.includes(entry.flag) && isOlder(entry, joining))
        .sort((a, b) => (isOlder(a, b) ? -1 : 1))
        .map((entry) => ({ sid: entry.sid, flag: entry.flag })),
      live: (sids) => Promise.all(sids.map((sid) => this.#isLive(sid))),
    };
  }

  /**
   * Takes a seat in every reject_new limit of the session's flag; returns the first limit that is
   * full (the seats taken before it are released when the session is undone), or null.
   */
  async #reserveSeats(session: Session): Promise<SessionLimit | null> {
    for (const limit of this.#limitsOf(session.device_flag, 'reject_new')) {
      const outcome = await joinSlot(this.#slotDeps(session, limit), limitSlotKey(session.uid, limit.flags), memberOf(session), limit.max, 'reject_new');
      if (!outcome.joined) return limit;
      await this.#settleSeat(session, limit, outcome.owed);
    }
    return null;
  }

  /** Joins every evict_oldest limit of the session's flag, ending the oldest members past its max (reason `cap`). */
  async #joinEvicting(session: Session): Promise<void> {
    for (const limit of this.#limitsOf(session.device_flag, 'evict_oldest')) {
      const outcome = await joinSlot(this.#slotDeps(session, limit), limitSlotKey(session.uid, limit.flags), memberOf(session), limit.max, 'evict_oldest');
      if (outcome.joined) await this.#settleSeat(session, limit, outcome.owed);
    }
  }

  /**
   * After joining a group slot: ends the sessions it pushed off or found owed (their #end releases
   * them from the slot), then, as takeDeviceSlot does, leaves the slot again if a revoke or ban ended
   * this session before it joined (that end could not release a seat not yet taken).
   */
  async #settleSeat(session: Session, limit: SessionLimit, owed: readonly SlotMember[]): Promise<void> {
    await Promise.all(owed.map((member) => this.#endAndRelease(session.uid, member.sid, member.flag, 'cap', session)));
    if (!(await this.#isLive(session.sid))) await releaseSlot(this.#kv, limitSlotKey(session.uid, limit.flags), session.sid);
  }

  /**
   * Undoes a login a reject_new limit refused, leaving nothing of it behind: its record, index entry
   * and seats go with its end, and the expiry tombstone written at creation is deleted too (nobody
   * holds the token it would explain).
   */
  async #refuse(session: Session): Promise<void> {
    await this.#undo(session, 'aborted');
    if ((this.#options.endedRetentionMs ?? 0) > 0) await this.#kv.del(endedKey(session.sid));
  }

  /**
   * Ends one session. GETDEL of the record is the step that ends it; everything after cleans up
   * keys that only this session owns (index field, last-seen) or that it may no longer own, which
   * are released by compare-and-delete so a concurrent login's slot survives (invariant 2).
   */
  async #end(uid: string, sid: string, flag: DeviceFlag, reason: RevokeReason, by?: Session): Promise<boolean> {
    const kv = this.#kv;
    const raw = await kv.getdel(sessionKey(sid));
    if (raw !== null) await this.#writeTombstone(sid, reason, by);
    await kv.hdel(userSessionsKey(uid), sid);
    if (this.#options.policies[flag].mode === 'exclusive') await releaseDeviceSlot(kv, uid, flag, sid);
    for (const limit of this.#options.limits ?? []) {
      if (limit.flags.includes(flag)) await releaseSlot(kv, limitSlotKey(uid, limit.flags), sid);
    }
    await this.#lastSeen.forget(sid);
    const session = raw === null ? null : parseSessionRecord(sid, raw);
    if (session !== null) await this.#options.onEnded?.(session, reason);
    return session !== null;
  }

  /** Ends one session, then settles its flag's IM token (docs/design.md §3.4): deleted if it was the last, else rotated. */
  async #endAndRelease(uid: string, sid: string, flag: DeviceFlag, reason: RevokeReason, by?: Session): Promise<LogoutOutcome> {
    const ended = await this.#end(uid, sid, flag, reason, by);
    return { ended, im: ended ? await this.im.sessionEnded(uid, flag) : null };
  }

  /** Undoes a login before it answers (its token was never handed out). */
  async #undo(session: Session, reason: RevokeReason): Promise<void> {
    if (await this.#end(session.uid, session.sid, session.device_flag, reason)) {
      await this.im.loginUndone(session.uid, session.device_flag);
    }
  }

  /** Ends these sessions at once; returns the entries of those this call ended. */
  async #endEach(uid: string, entries: readonly IndexEntry[], reason: RevokeReason): Promise<IndexEntry[]> {
    const ended = await Promise.all(entries.map((entry) => this.#end(uid, entry.sid, entry.flag, reason)));
    return entries.filter((_, i) => ended[i]);
  }

  /**
   * Only the call whose GETDEL ended the session gets here. A lost tombstone loses an explanation,
   * never the end itself, so a store error here does not fail the call.
   */
  async #writeTombstone(sid: string, reason: RevokeReason, by?: Session): Promise<void> {
    const retentionMs = this.#options.endedRetentionMs ?? 0;
    const details = retentionMs > 0 ? tombstone(reason, this.#options.clock.now(), by) : null;
    if (details === null) return;
    await this.#kv.set(endedKey(sid), JSON.stringify(details), { ttlMs: retentionMs }).catch(() => false);
  }

  /**
   * Why the session of a token that failed to validate ended, or null: unknown, malformed, ended
   * longer ago than the retention, or lost from the store (an expiry still ahead is no expiry).
   * Read only on the failure path, so validating a live token costs nothing more.
   */
  async whyEnded(token: string): Promise<EndedDetails | null> {
    const sid = sidOfPresentedToken(token);
    if (sid === null || (this.#options.endedRetentionMs ?? 0) <= 0) return null;
    const details = parseTombstone(await this.#kv.get(endedKey(sid)));
    return details === null || details.ended_at > this.#options.clock.now() ? null : details;
  }

  /** Whether the session's record is still there: the record decides, never the index. */
  async #isLive(sid: string): Promise<boolean> {
    return (await this.#kv.get(sessionKey(sid))) !== null;
  }

  /**
   * Whether a session of this flag is live. The record decides, not the index: a session another
   * call has just ended (its record gone, its index entry not yet) must not keep a token alive.
   */
  async #hasLiveSession(uid: string, flag: DeviceFlag): Promise<boolean> {
    for (const entry of await this.#liveEntries(uid)) {
      if (entry.flag === flag && (await this.#isLive(entry.sid))) return true;
    }
    return false;
  }

  async #indexEntries(uid: string): Promise<IndexEntry[]> {
    return decodeIndex(await this.#kv.hgetall(userSessionsKey(uid)));
  }

  /** Index entries not yet past their expiry; expired ones are dropped from the index. */
  async #liveEntries(uid: string): Promise<IndexEntry[]> {
    const now = this.#options.clock.now();
    const entries = await this.#indexEntries(uid);
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
}

const memberOf = (session: Session): SlotMember => ({ sid: session.sid, flag: session.device_flag });

/** Total order on sessions: creation time, then sid. */
function isOlder(a: IndexEntry, b: IndexEntry): boolean {
  return a.createdAt < b.createdAt || (a.createdAt === b.createdAt && a.sid < b.sid);
}
