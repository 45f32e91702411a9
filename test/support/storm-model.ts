/**
 * Shared by the storm tests (test/e2e/storm.test.ts, test/scale/cluster-storm.test.ts): a seeded
 * random source, so a run's sequence of operations can be replayed from its seed, the shapes of
 * their bookkeeping, the operations both storms run to end sessions, and the verdict the contract
 * gives each session once everything settled.
 */

/** mulberry32: the op sequence is reproducible from the seed (the interleaving is not). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A storm's size from `<prefix>_OPS`, `_CONCURRENCY` and `_USERS` (else the defaults), and its
 * seed from `<prefix>_SEED`, else a random one (every failure message names it, to replay the run).
 */
export function stormSize(prefix: string, defaults: { ops: number; concurrency: number; users: number }) {
  const env = (name: string, fallback: number): number => Number(process.env[`${prefix}_${name}`] ?? fallback);
  return {
    ops: env('OPS', defaults.ops),
    concurrency: env('CONCURRENCY', defaults.concurrency),
    users: env('USERS', defaults.users),
    seed: env('SEED', Math.floor(Math.random() * 2 ** 31)),
  };
}

/** The device flags the storms log in with: APP is exclusive, Web and PC are multi-session. */
export type Flag = 0 | 1 | 2;
export const APP: Flag = 0;
export const WEB: Flag = 1;
export const PC: Flag = 2;

/** One request as the storm saw it: numbers from the storm's tick counter, and the answer's status. */
export interface Exchange {
  readonly sentAt: number;
  respondedAt: number;
  status: number;
}

/** An APP login: it may replace the user's APP session. */
export interface AppLogin extends Exchange {
  sid: string | null;
}

export interface RevokeOthers extends Exchange {
  readonly keepSid: string;
}

/** What the contract says of a session once everything settled. */
export type Verdict = 'ended' | 'live' | 'unknown';

/** A session a storm holds the token of, with what happened to it. */
export interface StormSession {
  readonly user: StormUser;
  readonly flag: Flag;
  readonly token: string;
  readonly sid: string;
  readonly loginSentAt: number;
  readonly issuedAt: number;
  /** A logout or revoke was aimed at it, whatever it answered. */
  targeted: boolean;
  /** When an answer that the contract says ended it arrived. */
  endedAt: number | null;
  endedBy: string | null;
}

/** A storm user: the sessions it holds and the requests that may end them before their answer does. */
export interface StormUser {
  readonly username: string;
  uid: string;
  readonly sessions: StormSession[];
  readonly appLogins: AppLogin[];
  readonly revokeOthers: RevokeOthers[];
}

export const ok = (status: number): boolean => status === 200 || status === 201;

/** The session a login answered (`body`: its 200 or 201), put down as untouched so far. */
export const trackedSession = <U extends StormUser>(user: U, flag: Flag, body: { token: string; sid: string }, loginSentAt: number, issuedAt: number) => ({
  user, flag, token: body.token, sid: body.sid, loginSentAt, issuedAt, targeted: false, endedAt: null, endedBy: null,
});

/**
 * Sends a login (`send`) between two ticks and returns them with its answer. An APP login is put in
 * `user.appLogins` before it is sent: while in flight it may displace any APP session of the user,
 * and that is known before its answer is.
 */
export async function timedLogin<A extends { status: number; body: any }>(user: StormUser, flag: Flag, tick: () => number, send: () => Promise<A>): Promise<{ answer: A; sentAt: number; respondedAt: number }> {
  const sentAt = tick();
  const appLogin: AppLogin | null = flag === APP ? { sentAt, respondedAt: Number.POSITIVE_INFINITY, status: 0, sid: null } : null;
  if (appLogin !== null) user.appLogins.push(appLogin);
  const answer = await send();
  const respondedAt = tick();
  if (appLogin !== null) Object.assign(appLogin, { respondedAt, status: answer.status, sid: answer.body?.sid ?? null });
  return { answer, sentAt, respondedAt };
}

/** The sessions of `user` nothing has been aimed at and nothing has ended: the ones a client would still use. */
export const held = <S extends StormSession>(user: { readonly sessions: readonly S[] }): S[] =>
  user.sessions.filter((s) => !s.targeted && s.endedAt === null);

/** Puts down the first answer that ended `session`; a later one changes nothing. */
export function ended(session: StormSession, at: number, by: string): void {
  if (session.endedAt === null) {
    session.endedAt = at;
    session.endedBy = by;
  }
}

/**
 * How a storm sends one request with a session's token to a node of its choosing: an answer whose
 * status is not in `allowed` is the storm's violation to record, not the caller's.
 */
export type StormRequest<U extends StormUser> = (what: string, allowed: readonly number[], method: string, path: string, token: string, user: U) => Promise<{ status: number }>;

/** The requests that end sessions, each putting down what its answer guarantees. */
export function sessionEndings<S extends StormSession>(request: StormRequest<S['user']>, tick: () => number, counts: { logouts: number; revokes: number; revokeOthers: number }) {
  return {
    async logout(session: S): Promise<void> {
      session.targeted = true;
      counts.logouts += 1;
      const answer = await request('quit', [200, 401], 'POST', '/v1/user/quit', session.token, session.user);
      const at = tick();
      if (answer.status === 200) ended(session, at, 'logout');
    },

    async revokeOne(caller: S, target: S): Promise<void> {
      target.targeted = true;
      counts.revokes += 1;
      // 404: the target had already ended; 401: the caller had.
      const answer = await request('revoke one', [200, 401, 404], 'DELETE', `/v1/user/sessions/${target.sid}`, caller.token, caller.user);
      const at = tick();
      if (answer.status === 200) ended(target, at, 'revoke');
    },

    async revokeOthers(caller: S): Promise<void> {
      const user = caller.user;
      const exchange: RevokeOthers = { sentAt: tick(), respondedAt: Number.POSITIVE_INFINITY, status: 0, keepSid: caller.sid };
      user.revokeOthers.push(exchange);
      counts.revokeOthers += 1;
      // 403: step_up_required, a session that showed no factor lately (a QR login, or older than
      // mfa.step_up_seconds) revokes nothing before it steps up (docs/api.md §14).
      const answer = await request('revoke_others', [200, 401, 403], 'POST', '/v1/user/sessions/revoke_others', caller.token, user);
      exchange.respondedAt = tick();
      exchange.status = answer.status;
      if (answer.status !== 200) return;
      // Every sibling whose login had answered before this request was sent was in the index.
      for (const session of user.sessions) {
        if (session !== caller && session.issuedAt < exchange.sentAt) ended(session, exchange.respondedAt, 'revoke_others');
      }
    },
  };
}

/**
 * The later APP login that replaced an APP session: one that answered 200 (or 201) and was sent
 * after the session's login answered, even when an APP login with an unknown outcome ran between:
 * one that took the device slot and failed before ending the session it displaced leaves it named
 * in the slot, and the next login ends it too.
 */
export function replacedBy(session: StormSession): AppLogin | undefined {
  return session.user.appLogins.find((l) => l.sid !== session.sid && ok(l.status) && l.sentAt > session.issuedAt);
}

/** How many sessions got each verdict, as the storms' summaries print them. */
export const verdictCounts = (byVerdict: (wanted: Verdict) => readonly StormSession[]) => ({
  ended_checked: byVerdict('ended').length,
  live_checked: byVerdict('live').length,
  unknown: byVerdict('unknown').length,
});

/**
 * What the contract says about a session once everything has settled:
 * - ended: a logout, revoke or revoke-others answered 200 after its login had answered, or (APP) a
 *   later APP login answered (see replacedBy): exclusive means one (invariant 3);
 * - unknown: something that may have ended it ran, without that guarantee (an answer other than
 *   200 to what was aimed at it, a revoke-others by a sibling that overlapped it, an APP login of
 *   the user that overlapped or followed it), or `mayHaveEnded` says a storm's own operation did;
 * - live: nothing could have ended it.
 */
export function verdict(session: StormSession, mayHaveEnded: (session: StormSession) => boolean = () => false): Verdict {
  const user = session.user;
  if (session.endedAt !== null) return 'ended';
  if (session.flag === APP && replacedBy(session) !== undefined) return 'ended';
  if (session.targeted) return 'unknown';
  if (user.revokeOthers.some((r) => r.keepSid !== session.sid && r.status !== 403 && r.respondedAt > session.loginSentAt)) return 'unknown';
  if (mayHaveEnded(session)) return 'unknown';
  if (session.flag === APP && user.appLogins.some((l) => l.sid !== session.sid && l.respondedAt > session.loginSentAt)) return 'unknown';
  return 'live';
}

/** A `session_limits` entry as the storms configure it (docs/design.md §3.2, 7). */
export interface StormLimit {
  readonly flags: readonly Flag[];
  readonly max: number;
  readonly on_exceed: 'evict_oldest' | 'reject_new';
}

/**
 * Each user holding more sessions of the limit's flags that still validate than its max, as
 * `username: n > max`. Every token a storm was handed is among `user.sessions`, so what validates
 * there is what the user holds.
 */
export function overLimit(users: readonly StormUser[], limit: StormLimit, validates: (session: StormSession) => boolean): string[] {
  return users.flatMap((user) => {
    const live = user.sessions.filter((session) => limit.flags.includes(session.flag) && validates(session)).length;
    return live > limit.max ? [`${user.username}: ${live} > ${limit.max} of flags ${limit.flags.join(',')}`] : [];
  });
}

/**
 * Whether a 409 is the refusal of a full reject_new limit among `limits`: code `session_limit`,
 * `details.limit` naming the limit's flags and max.
 */
export function isLimitRefusal(answer: { status: number; body: any }, limits: readonly StormLimit[]): boolean {
  const limit = answer.body?.details?.limit;
  return answer.status === 409 && answer.body?.code === 'session_limit' && limits.some((l) =>
    l.on_exceed === 'reject_new' && l.max === limit?.max && JSON.stringify(l.flags) === JSON.stringify(limit?.flags));
}
