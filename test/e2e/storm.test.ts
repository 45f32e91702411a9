import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, type Answer } from '../support/server.ts';
import { skipUnlessRedisServer, startLatchkey, startRedisServer, type LatchkeyProcess, type RedisServerProcess } from '../support/processes.ts';
import {
  prng, stormSize, verdictCounts, type Flag, APP, WEB, PC, held, sessionEndings, timedLogin, trackedSession, verdict, type StormSession, type StormUser, type Verdict,
  isLimitRefusal, overLimit, type Exchange, type StormLimit,
} from '../support/storm-model.ts';

/**
 * Storm test (docs/design.md §3.3): two latchkey processes share one Redis and one SQLite account file;
 * thousands of concurrent logins (APP, Web, PC), logouts, revokes and revoke-others run over HTTP
 * against both. Then every token whose end the contract guarantees is tried on both nodes — none
 * may pass — and every session nothing could have ended must still pass on both.
 *
 * "Before" below is real time as one event loop sees it: each request's send and each answer's
 * arrival takes a number from one counter (`tick`), so `a.issuedAt < b.sentAt` means a's answer
 * had arrived when b was sent.
 *
 * Env: STORM_OPS (default 3000), STORM_CONCURRENCY (64), STORM_USERS (40), STORM_SEED.
 */

const { ops: OPS, concurrency: CONCURRENCY, users: USERS, seed: SEED } = stormSize('STORM', { ops: 3000, concurrency: 64, users: 40 });
/** Web and PC logins per user stay at the default multi cap, so the cap never ends a session. */
const MULTI_CAP = 10;
const PASSWORD = 'storm password';
/**
 * Session limits (docs/design.md §3.2, 7): Web and PC together refuse a login past 6, and PC alone
 * ends its oldest past 3 — two limits sharing a flag, under the storm's concurrent logins.
 */
const LIMITS: readonly StormLimit[] = [
  { flags: [WEB, PC], max: 6, on_exceed: 'reject_new' },
  { flags: [PC], max: 3, on_exceed: 'evict_oldest' },
];
/** The operations that end sessions (their check names start so). */
const ENDINGS = ['quit', 'revoke one', 'revoke_others'];

interface Tracked extends StormSession {
  readonly user: UserState;
}

interface UserState extends StormUser {
  readonly sessions: Tracked[];
  webLogins: number;
  pcLogins: number;
  /** Every PC login, sent or answered: each may end an older PC session past the evict_oldest limit. */
  readonly pcExchanges: Exchange[];
}

describe('storm: two latchkey processes, one Redis, one account file', { skip: skipUnlessRedisServer() }, () => {
  const random = prng(SEED);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

  let dir = '';
  let redis: RedisServerProcess | undefined;
  const nodes: LatchkeyProcess[] = [];
  const users: UserState[] = [];
  /** Contract violations seen during the storm (unexpected statuses, ended tokens that passed). */
  const violations: string[] = [];
  const counts = { ops: 0, logins: 0, logouts: 0, revokes: 0, revokeOthers: 0, rechecks: 0, limitRefusals: 0 };
  let stormMs = 0;

  let clock = 0;
  const tick = () => ++clock;

  const node = () => pick(nodes);
  /** Ends that answered 503 upstream_unavailable: allowed by the contract (nothing was promised), but rare. */
  const unavailable: string[] = [];
  const check = (what: string, answer: Answer, allowed: readonly number[]) => {
    // On a machine loaded by other work a store call can time out; a logout or revoke then answers
    // 503 and promises nothing, so its target only counts as targeted (never as surely live).
    if (answer.status === 503 && answer.body?.code === 'upstream_unavailable' && ENDINGS.some((end) => what.startsWith(end))) {
      unavailable.push(what);
      return;
    }
    if (!allowed.includes(answer.status)) violations.push(`${what}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
  };

  async function login(user: UserState, flag: Flag, path: '/v1/user/login' | '/v1/user/register'): Promise<void> {
    const device = { device_id: `${user.username}-${flag}-${clock}`, device_name: 'storm', device_model: `flag ${flag}` };
    const body = { username: user.username, password: PASSWORD, flag, device };
    const pc: Exchange | null = flag === PC ? { sentAt: tick(), respondedAt: Number.POSITIVE_INFINITY, status: 0 } : null;
    if (pc !== null) user.pcExchanges.push(pc);
    const { answer, sentAt, respondedAt } = await timedLogin(user, flag, tick, () => call(node(), 'POST', path, body));
    if (pc !== null) Object.assign(pc, { respondedAt, status: answer.status });
    if (isLimitRefusal(answer, LIMITS)) {
      counts.limitRefusals += 1;
      return;
    }
    check(`${path} ${user.username} flag ${flag}`, answer, [path === '/v1/user/register' ? 201 : 200]);
    if (answer.status !== 200 && answer.status !== 201) return;
    user.uid = answer.body.uid;
    user.sessions.push(trackedSession(user, flag, answer.body, sentAt, respondedAt));
  }

  async function passwordLogin(user: UserState): Promise<void> {
    const roll = random();
    let flag: Flag = roll < 0.4 ? APP : roll < 0.7 ? WEB : PC;
    if (flag === WEB && user.webLogins >= MULTI_CAP) flag = PC;
    if (flag === PC && user.pcLogins >= MULTI_CAP) flag = user.webLogins < MULTI_CAP ? WEB : APP;
    if (flag === WEB) user.webLogins += 1;
    if (flag === PC) user.pcLogins += 1;
    counts.logins += 1;
    await login(user, flag, '/v1/user/login');
  }

  const { logout, revokeOne, revokeOthers } = sessionEndings<Tracked>(async (what, allowed, method, path, token) => {
    const answer = await call(node(), method, path, undefined, token);
    check(what, answer, allowed);
    return answer;
  }, tick, counts);

  /** An ended token tried again mid-storm, on either node: it must fail at once and forever. */
  async function recheck(session: Tracked): Promise<void> {
    counts.rechecks += 1;
    const answer = await call(node(), 'GET', '/v1/user/current', undefined, session.token);
    if (answer.status !== 401) {
      violations.push(`token ended by ${session.endedBy} answered ${answer.status} mid-storm on recheck`);
    }
  }

  async function oneOp(): Promise<void> {
    const user = pick(users);
    const live = held(user);
    const roll = random();
    if (roll < 0.42 || live.length === 0) return passwordLogin(user);
    if (roll < 0.62) return logout(pick(live));
    if (roll < 0.76 && live.length >= 2) {
      const caller = pick(live);
      return revokeOne(caller, pick(live.filter((s) => s !== caller)));
    }
    if (roll < 0.79) return revokeOthers(pick(live));
    const endedSoFar = users.flatMap((u) => u.sessions.filter((s) => s.endedAt !== null));
    if (endedSoFar.length > 0) return recheck(pick(endedSoFar));
    return passwordLogin(user);
  }

  /** Status of GET /v1/user/current with each session's token, on each node, after the storm. */
  const finalAnswers = new Map<Tracked, Answer[]>();
  const all = () => users.flatMap((u) => u.sessions);
  /**
   * The Web/PC cap never ends a session here (≤ 10 logins per flag and user): only the storm's
   * operations and the PC limit do. The PC limit pushes a session off only when `max` live members
   * joined the group slot after it, each a PC login that had not answered before it was sent.
   */
  const pcMax = LIMITS.find((l) => l.on_exceed === 'evict_oldest')?.max ?? 0;
  const evictedMaybe = (s: StormSession): boolean =>
    s.flag === PC && (s.user as UserState).pcExchanges.filter((e) => e.respondedAt !== s.issuedAt && e.respondedAt > s.loginSentAt).length >= pcMax;
  const byVerdict = (wanted: Verdict) => all().filter((s) => verdict(s, evictedMaybe) === wanted);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-storm-'));
    redis = await startRedisServer();
    const config = {
      store: redis.url,
      db: `sqlite:${join(dir, 'accounts.db')}`,
      password: { memory_cost: 1024, time_cost: 1 },
      rate_limits: { login: { max: 1_000_000 }, register: { max: 1_000_000 } },
      login_throttle: { per_account_ip: 1000, per_account: 100_000 },
      session_limits: LIMITS,
    };
    // One after the other: the first one creates the account schema.
    nodes.push(await startLatchkey(config));
    nodes.push(await startLatchkey(config));

    const started = performance.now();
    for (let i = 0; i < USERS; i += 1) {
      users.push({ username: `storm${i}`, uid: '', sessions: [], appLogins: [], revokeOthers: [], webLogins: 0, pcLogins: 0, pcExchanges: [] });
    }
    await Promise.all(users.map((user) => login(user, APP, '/v1/user/register')));
    let issued = 0;
    const worker = async () => {
      while (issued < OPS) {
        issued += 1;
        await oneOp();
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    counts.ops = issued;

    // Settled: ask both nodes about every token.
    const sessions = all();
    let index = 0;
    const checker = async () => {
      while (index < sessions.length) {
        const session = sessions[index++] as Tracked;
        const answers: Answer[] = [];
        for (const n of nodes) answers.push(await call(n, 'GET', '/v1/user/current', undefined, session.token));
        finalAnswers.set(session, answers);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, checker));
    stormMs = performance.now() - started;
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.stop();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('every storm request answered as the contract says, and both nodes stayed up', () => {
    assert.equal(counts.ops, OPS, 'every planned operation ran');
    assert.deepEqual(violations, [], `seed ${SEED}: ${violations.length} violations`);
    assert.ok(unavailable.length <= Math.max(3, OPS / 100), `seed ${SEED}: ${unavailable.length} ends answered 503: ${unavailable.slice(0, 5).join(', ')}`);
    for (const n of nodes) assert.ok(n.alive(), `a latchkey process died:\n${n.output()}`);
  });

  it('no ended token authenticates on either node', () => {
    const endedSessions = byVerdict('ended');
    assert.ok(endedSessions.length >= Math.min(500, OPS / 6), `only ${endedSessions.length} ended tokens to check`);
    const passed = endedSessions.flatMap((s) =>
      (finalAnswers.get(s) ?? []).map((answer, i) => ({ by: s.endedBy ?? 'app-replaced', flag: s.flag, node: i, status: answer.status })),
    ).filter((r) => r.status !== 401);
    assert.deepEqual(passed, [], `seed ${SEED}: ended tokens that did not answer 401`);
  });

  it('every session nothing ended still authenticates on both nodes, as itself', () => {
    const live = byVerdict('live');
    assert.ok(live.length >= Math.min(40, OPS / 75), `only ${live.length} live tokens to check`);
    const failed = live.flatMap((s) =>
      (finalAnswers.get(s) ?? []).map((answer, i) => ({ s, answer, node: i })),
    ).filter(({ s, answer }) => answer.status !== 200 || answer.body.session?.sid !== s.sid || answer.body.uid !== s.user.uid)
      .map(({ s, answer, node: i }) => ({ user: s.user.username, flag: s.flag, node: i, status: answer.status }));
    assert.deepEqual(failed, [], `seed ${SEED}: untouched sessions that did not validate`);
  });

  it('both nodes agree on every token, and at most one APP session per user validates', () => {
    const disagreements = all().filter((s) => {
      const [a, b] = finalAnswers.get(s) ?? [];
      return a?.status !== b?.status || (a?.status !== 200 && a?.status !== 401);
    });
    assert.equal(disagreements.length, 0, 'a token answered differently on the two nodes, or neither 200 nor 401');
    for (const user of users) {
      const validApp = user.sessions.filter((s) => s.flag === APP && finalAnswers.get(s)?.[0]?.status === 200);
      assert.ok(validApp.length <= 1, `${user.username} has ${validApp.length} valid APP sessions`);
    }
  });

  it('no user holds more live sessions of a limited group than its max, on either node', () => {
    for (const [i] of nodes.entries()) {
      for (const limit of LIMITS) {
        assert.deepEqual(overLimit(users, limit, (s) => finalAnswers.get(s as Tracked)?.[i]?.status === 200), [], `seed ${SEED}, node ${i}`);
      }
    }
    assert.ok(counts.limitRefusals > 0, 'no login was refused by the reject_new limit: the storm did not reach it');
  });

  it('prints a summary', () => {
    const summary = {
      seed: SEED,
      ops: counts.ops,
      logins: counts.logins + USERS,
      logouts: counts.logouts,
      revokes: counts.revokes,
      revoke_others: counts.revokeOthers,
      mid_storm_rechecks: counts.rechecks,
      limit_refusals: counts.limitRefusals,
      ...verdictCounts(byVerdict),
      nodes: nodes.length,
      concurrency: CONCURRENCY,
      duration_s: Number((stormMs / 1000).toFixed(1)),
    };
    console.log(`storm summary ${JSON.stringify(summary)}`);
  });
});
