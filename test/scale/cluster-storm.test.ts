import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis } from 'ioredis';
import { redisCli, redisClusterAvailable, startRedisCluster, type RedisCluster } from '../../scripts/redis-cluster.ts';
import { skipUnlessRedisServer, startLatchkey, type LatchkeyProcess } from '../support/processes.ts';
import { skipUnlessPrivatePostgres, startPrivatePostgres, type PrivatePostgres } from '../support/private-postgres.ts';
import { describeRun, runLatchkeyCli } from '../support/cli-run.ts';
import { keySlot } from '../../src/adapters/redis/cluster-reads.ts';
import {
  prng, stormSize, verdictCounts, type Flag, APP, WEB, PC, type Exchange, ended, held, ok, sessionEndings, timedLogin, trackedSession, verdict as stormVerdict,
  type StormSession, type StormUser, type Verdict,
} from '../support/storm-model.ts';

/**
 * The session storm at scale, with faults (docs/deploy.md §6): three latchkey processes on
 * a Redis Cluster (3 masters, 3 replicas) and a private PostgreSQL. Ten thousand operations —
 * password logins on every flag, QR logins, logouts, revokes, revoke-others, bans and unbans by an
 * admin — spread over the three nodes, while the test kills a Redis master (its replica takes
 * over), crashes and restarts PostgreSQL, and kill -9s a latchkey node mid-request (a new one takes
 * its place).
 *
 * Bookkeeping as in test/e2e/storm.test.ts: each send and each answer takes a number from one
 * counter (`tick`), so `a.issuedAt < b.sentAt` means a's answer had arrived when b was sent. A 503
 * or a socket error is an unknown outcome: whatever it aimed at may or may not have happened, so it
 * makes the sessions it could touch "unknown" — but a 2xx must always be true.
 *
 * Env: SCALE_OPS (default 10000), SCALE_CONCURRENCY (48), SCALE_USERS (100), SCALE_SEED.
 */

const { ops: OPS, concurrency: CONCURRENCY, users: USERS, seed: SEED } = stormSize('SCALE', { ops: 10_000, concurrency: 48, users: 100 });
/** Web and PC caps far above what one user logs in here, so a cap never ends a tracked session. */
const MULTI_CAP = 1000;
const PASSWORD = 'cluster storm password';
/** One request's bound: a hang is an unknown outcome too, and a violation (no store fault lasts that long). */
const REQUEST_TIMEOUT_MS = 20_000;
/** Statuses that say "the outcome is unknown": the store or the node could not answer. */
const UNKNOWN = [0, 503];

interface Answer {
  status: number;
  // Answers are read field by field; the contract itself is asserted, not typed.
  body: any;
  /** No answer within REQUEST_TIMEOUT_MS. */
  hung?: boolean;
}

interface Tracked extends StormSession {
  readonly user: UserState;
  readonly method: 'password' | 'qr' | 'register';
  /** Wall-clock time its login answered (performance.now()), to place it against the faults. */
  readonly answeredAtMs: number;
}

interface BanOp extends Exchange {
  readonly kind: 'ban' | 'unban';
}

interface UserState extends StormUser {
  readonly sessions: Tracked[];
  readonly bans: BanOp[];
  /** A ban or unban of this user is in flight (the test sends one at a time per user). */
  banBusy: boolean;
  /** The last ban op sent was a ban (whatever it answered). */
  banned: boolean;
  /** Since when an unban answered 200 with no ban sent after it: a 403 on login is then false. */
  activeSince: number | null;
  /** Logins of each multi flag attempted, to stay under the cap. */
  readonly attempts: Record<Flag, number>;
  /** Operations on this user that answered 503 or not at all. */
  unknownOutcomes: number;
  /**
   * Logins of each flag (password, register, QR exchange) that answered 503 or not at all: each may
   * have left a session nobody holds a token for in the store (docs/deploy.md §6), and nothing else may.
   */
  readonly unknownLogins: Record<Flag, number>;
}

async function send(node: { url: string }, method: string, path: string, body?: unknown, token?: string): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token !== undefined) headers.token = token;
  try {
    const response = await fetch(node.url + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text for the failure message
    }
    return { status: response.status, body: parsed };
  } catch (error) {
    // Refused, reset by a node killed mid-request, or timed out: nobody can say what happened.
    return { status: 0, body: (error as Error).message, hung: (error as Error).name === 'TimeoutError' };
  }
}

const skip = skipUnlessRedisServer() || skipUnlessPrivatePostgres()
  || (redisClusterAvailable() ? false : 'SKIPPED: redis-cli is missing');

describe('cluster storm: 3 latchkey nodes, Redis Cluster, PostgreSQL, with faults', { skip }, () => {
  const random = prng(SEED);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

  let dir = '';
  let configPath = '';
  let config: Record<string, unknown> = {};
  let cluster: RedisCluster | undefined;
  let pg: PrivatePostgres | undefined;
  const nodes: LatchkeyProcess[] = [];
  /** Nodes killed during the storm (stopped in after()). */
  const killed: LatchkeyProcess[] = [];
  const users: UserState[] = [];
  let admin = { uid: '', token: '', sid: '' };
  /** When (performance.now()) and where the admin's token first answered 401, for a failure's explanation. */
  let adminLost: { at: number; node: number; what: string } | null = null;
  const violations: string[] = [];
  const counts = {
    ops: 0, logins: 0, qrLogins: 0, qrAbandoned: 0, logouts: 0, revokes: 0, revokeOthers: 0, bans: 0, unbans: 0, rechecks: 0,
    requests: 0, unavailable: 0, socketErrors: 0, hung: 0,
  };
  /** 503s and socket errors by the fault that was under way (or had just ended) when they came. */
  const unknownByFault: Record<string, number> = {};
  /** Successful answers after each fault had recovered: the nodes serve again without a restart. */
  const servedAfter: Record<string, number> = {};
  const faultTimings: Record<string, number> = {};
  /** Faults under way (or in their tail): at a small SCALE_OPS two of them overlap. */
  const activeFaults = new Set<string>();
  /** Each fault: when it began, when it was repaired (a replica took over), and when its tail ended. */
  const faultSpans: { readonly name: string; readonly start: number; repaired: number; end: number }[] = [];
  const currentFault = (): string | null => (activeFaults.size === 0 ? null : [...activeFaults].join('+'));
  const recovered: string[] = [];
  let stormMs = 0;

  let clock = 0;
  /** Wall-clock time of each tick, to place an answer against the faults. */
  const tickMs = new Map<number, number>();
  const tick = () => {
    clock += 1;
    tickMs.set(clock, performance.now());
    return clock;
  };
  const node = () => pick(nodes);

  /**
   * One request to a random node, counted; unexpected statuses are violations. An unknown outcome is
   * put down to the fault under way when it was sent or answered ('none' if neither: a violation).
   */
  async function request(what: string, allowed: readonly number[], method: string, path: string, body?: unknown, token?: string, user?: UserState): Promise<Answer> {
    counts.requests += 1;
    const faultAtSend = currentFault();
    const target = node();
    const answer = await send(target, method, path, body, token);
    if (token === admin.token && answer.status === 401 && adminLost === null) adminLost = { at: performance.now(), node: nodes.indexOf(target), what };
    if (answer.status === 0) counts.socketErrors += 1;
    if (answer.status === 503) counts.unavailable += 1;
    if (answer.hung === true) {
      counts.hung += 1;
      violations.push(`${what}: no answer within ${REQUEST_TIMEOUT_MS} ms (fault: ${currentFault() ?? faultAtSend ?? 'none'})`);
    }
    if (UNKNOWN.includes(answer.status)) {
      const label = currentFault() ?? faultAtSend ?? 'none';
      unknownByFault[label] = (unknownByFault[label] ?? 0) + 1;
      if (user !== undefined) user.unknownOutcomes += 1;
      if (answer.status === 503 && answer.body?.code !== 'upstream_unavailable') violations.push(`${what}: 503 without upstream_unavailable ${JSON.stringify(answer.body)}`);
    } else if (!allowed.includes(answer.status)) {
      violations.push(`${what}: HTTP ${answer.status} ${JSON.stringify(answer.body)} (fault: ${currentFault() ?? 'none'})`);
    } else if (ok(answer.status)) {
      for (const fault of recovered) servedAfter[fault] = (servedAfter[fault] ?? 0) + 1;
    }
    return answer;
  }

  const track = (user: UserState, flag: Flag, method: Tracked['method'], body: any, loginSentAt: number, issuedAt: number) => {
    user.uid = body.uid;
    user.sessions.push({ ...trackedSession(user, flag, body, loginSentAt, issuedAt), method, answeredAtMs: performance.now() });
  };

  /** A 403 on a login is true only while a ban may be in force. */
  const loginStatuses = (user: UserState, sentAt: number): number[] =>
    user.activeSince !== null && sentAt > user.activeSince ? [200, 201] : [200, 201, 403];

  function checkLoginRefusal(what: string, user: UserState, sentAt: number, answer: Answer): void {
    if (answer.status === 403 && !loginStatuses(user, sentAt).includes(403)) {
      violations.push(`${what}: 403 although ${user.username} was active since tick ${user.activeSince}`);
    }
  }

  async function passwordLogin(user: UserState, flag: Flag, path = '/v1/user/login'): Promise<void> {
    if (flag !== APP) user.attempts[flag] += 1;
    const device = { device_id: `${user.username}-${flag}-${clock}`, device_name: 'cluster storm', device_model: `flag ${flag}` };
    counts.logins += 1;
    const { answer, sentAt, respondedAt } = await timedLogin(user, flag, tick, () =>
      request(`${path} ${user.username} flag ${flag}`, [200, 201, 403], 'POST', path, { username: user.username, password: PASSWORD, flag, device }, undefined, user));
    if (UNKNOWN.includes(answer.status)) user.unknownLogins[flag] += 1;
    checkLoginRefusal(path, user, sentAt, answer);
    if (ok(answer.status)) track(user, flag, path === '/v1/user/register' ? 'register' : 'password', answer.body, sentAt, respondedAt);
  }

  function loginFlag(user: UserState): Flag {
    const roll = random();
    const flag: Flag = roll < 0.4 ? APP : roll < 0.7 ? WEB : PC;
    return flag !== APP && user.attempts[flag] >= MULTI_CAP - 1 ? APP : flag;
  }

  /** Browser on one node, phone on another, exchange on a third: create, scan, grant, poll, exchange. */
  async function qrLogin(user: UserState, scanner: Tracked): Promise<void> {
    const flag: Flag = random() < 0.5 ? WEB : PC;
    if (user.attempts[flag] >= MULTI_CAP - 1) return passwordLogin(user, APP);
    counts.qrLogins += 1;
    const query = new URLSearchParams({ flag: String(flag), device_id: `${user.username}-qr-${clock}`, device_name: 'storm browser', device_model: 'qr' });
    const created = await request('loginuuid', [200], 'GET', `/v1/user/loginuuid?${query}`, undefined, undefined, user);
    if (created.status !== 200) return abandonQr();
    const { uuid, poll_secret } = created.body;
    // 401: the scanning session ended meanwhile; 403/409/410: it is no longer the signed-in app, or the request moved on.
    const scanned = await request('qr scan', [200, 401, 403, 409, 410], 'POST', `/v1/user/qrcode/${uuid}/scan`, undefined, scanner.token, user);
    if (scanned.status !== 200) return abandonQr();
    const granted = await request('qr grant', [200, 401, 403, 409, 410], 'POST', '/v1/user/grant_login', { uuid, approve: true }, scanner.token, user);
    if (granted.status !== 200) return abandonQr();
    if (granted.body.status !== 'authed') violations.push(`qr grant answered ${JSON.stringify(granted.body)}`);
    const polled = await request('qr poll', [200], 'GET', `/v1/user/loginstatus?${new URLSearchParams({ uuid, poll_secret, last_status: 'scanned' })}`, undefined, undefined, user);
    if (polled.status !== 200 || polled.body.status !== 'authed') {
      if (polled.status === 200) violations.push(`qr poll after a granted login answered ${JSON.stringify(polled.body)}`);
      return abandonQr();
    }
    user.attempts[flag] += 1;
    const sentAt = tick();
    // 410: the approving APP session was ended (replaced, revoked) before the exchange.
    const exchange = await request('qr exchange', [200, 403, 410], 'POST', `/v1/user/login_authcode/${polled.body.auth_code}`, { uuid, poll_secret }, undefined, user);
    const respondedAt = tick();
    if (UNKNOWN.includes(exchange.status)) user.unknownLogins[flag] += 1;
    checkLoginRefusal('qr exchange', user, sentAt, exchange);
    if (exchange.status !== 200) return abandonQr();
    if (exchange.body.uid !== user.uid || exchange.body.device_flag !== flag) violations.push(`qr exchange answered ${JSON.stringify(exchange.body)}`);
    track(user, flag, 'qr', exchange.body, sentAt, respondedAt);
  }

  function abandonQr(): void {
    counts.qrAbandoned += 1;
  }

  const { logout, revokeOne, revokeOthers } = sessionEndings<Tracked>(
    (what, allowed, method, path, token, user) => request(what, allowed, method, path, undefined, token, user), tick, counts);

  /** An admin bans or unbans the user (one op per user at a time). */
  async function banOrUnban(user: UserState): Promise<void> {
    const kind = user.banned ? 'unban' : 'ban';
    const op: BanOp = { kind, sentAt: tick(), respondedAt: Number.POSITIVE_INFINITY, status: 0 };
    user.banBusy = true;
    user.banned = kind === 'ban';
    if (kind === 'ban') user.activeSince = null;
    user.bans.push(op);
    counts[kind === 'ban' ? 'bans' : 'unbans'] += 1;
    const answer = await request(kind, [200], 'PUT', `/v1/manager/users/${user.uid}/status`, { status: kind === 'ban' ? 'banned' : 'active' }, admin.token, user);
    op.respondedAt = tick();
    op.status = answer.status;
    user.banBusy = false;
    if (answer.status !== 200) return;
    if (kind === 'unban') {
      user.activeSince = op.respondedAt;
      return;
    }
    // Ban is total (invariant 5): every session whose login had answered before the ban was sent.
    for (const session of user.sessions) if (session.issuedAt < op.sentAt) ended(session, op.respondedAt, 'ban');
  }

  /** A token the contract says has ended, tried again on any node: never a 200. */
  async function recheck(session: Tracked): Promise<void> {
    counts.rechecks += 1;
    const answer = await request('recheck', [401], 'GET', '/v1/user/current', undefined, session.token);
    if (answer.status === 200) violations.push(`token ended by ${session.endedBy ?? 'an APP login'} answered 200 mid-storm (${session.user.username}, flag ${session.flag})`);
  }

  async function oneOp(): Promise<void> {
    const user = pick(users);
    const live = held(user);
    const roll = random();
    // A banned user is soon unbanned again, so bans do not take users out of the storm for good.
    if (!user.banBusy && roll < (user.banned ? 0.3 : 0.012)) return banOrUnban(user);
    if (roll < 0.38 || live.length === 0) return passwordLogin(user, loginFlag(user));
    if (roll < 0.44) {
      const apps = live.filter((s) => s.flag === APP);
      return apps.length > 0 ? qrLogin(user, pick(apps)) : passwordLogin(user, APP);
    }
    if (roll < 0.60) return logout(pick(live));
    if (roll < 0.72 && live.length >= 2) {
      const caller = pick(live);
      return revokeOne(caller, pick(live.filter((s) => s !== caller)));
    }
    if (roll < 0.75) return revokeOthers(pick(live));
    const candidate = pick(users).sessions;
    const endedOne = candidate.length === 0 ? undefined : pick(candidate);
    if (endedOne !== undefined && verdict(endedOne) === 'ended') return recheck(endedOne);
    return passwordLogin(user, loginFlag(user));
  }

  /**
   * Without store_min_replicas (this storm kills a master and does not bring a replica back, so it
   * cannot require one) Redis may lose a write its master acknowledged just before dying
   * (docs/deploy.md §6): a login answered around the kill may have lost its index entry, and then
   * revoke-others and ban sweeps, which find sessions by the index, need not reach it.
   */
  // From a second before the kill until the fault's tail has passed (clients reconnect to the new
  // master meanwhile): what was answered then may rest on a write the dying master acknowledged.
  const aroundMasterKill = (ms: number): boolean =>
    faultSpans.some((f) => f.name === 'redis_master_killed' && ms >= f.start - 1000 && ms <= f.end);
  const indexMayBeLost = (session: Tracked): boolean => aroundMasterKill(session.answeredAtMs);
  /** The same for the GETDEL that ended it: lost in the failover, the record is back (docs/deploy.md §6). */
  const endMayBeLost = (session: Tracked): boolean =>
    session.endedAt !== null && aroundMasterKill(tickMs.get(session.endedAt) ?? Number.NaN);

  /** The storms' verdict; a ban that answered after the session's login was sent may have ended it too. */
  const verdict = (session: Tracked): Verdict => {
    if (indexMayBeLost(session) && (session.endedBy === 'revoke_others' || session.endedBy === 'ban')) return 'unknown';
    if (endMayBeLost(session)) return 'unknown';
    return stormVerdict(session, () => session.user.bans.some((b) => b.kind === 'ban' && b.respondedAt > session.loginSentAt));
  };

  // -------------------------------------------------------------------------------------------
  // faults

  async function fault(name: string, run: () => Promise<void>): Promise<void> {
    activeFaults.add(name);
    const started = performance.now();
    const span = { name, start: started, repaired: Number.POSITIVE_INFINITY, end: Number.POSITIVE_INFINITY };
    faultSpans.push(span);
    await run();
    span.repaired = performance.now();
    faultTimings[`${name}_ms`] = Math.round(performance.now() - started);
    // Clients see the tail of a fault for a moment after it is repaired (reconnects, pools).
    await sleep(2000);
    span.end = performance.now();
    activeFaults.delete(name);
    recovered.push(name);
  }

  /** SIGKILL of a master; done when its replica is a master and every live node says cluster_state:ok. */
  async function killRedisMaster(): Promise<void> {
    assert.ok(cluster);
    const victim = pick(await cluster.masters());
    // For a failure's explanation: which slots the victim served, which keys its replica lacked
    // or held besides (a replica that is not its master's copy loses acknowledged writes of any
    // age in the failover), and the master's replication offset just before the kill against the
    // replica's just after (the writes in flight).
    killSite.slots = victimSlots(redisCli(victim, 'CLUSTER', 'NODES'), victim);
    const before = redisCli(victim, 'INFO', 'replication');
    const replica = Number(/slave0:[^\n]*port=(\d+)/.exec(before)?.[1]);
    const copy = Number.isFinite(replica) ? await replicaDifference(victim, replica) : 'no replica';
    cluster.kill(victim);
    killSite.port = victim;
    const after = Number.isFinite(replica) ? redisCli(replica, 'INFO', 'replication') : '';
    killSite.replication = `master offset ${/master_repl_offset:(\d+)/.exec(before)?.[1]} before, replica ${replica} at ${/slave_repl_offset:(\d+)/.exec(after)?.[1]} after; ${copy}`;
    const deadline = performance.now() + 30_000;
    for (;;) {
      await sleep(200);
      const masters = await cluster.masters();
      const alive = cluster.nodes.filter((n) => n.port !== victim);
      if (masters.length === 3 && !masters.includes(victim) && alive.every((n) => redisCli(n.port, 'CLUSTER', 'INFO').includes('cluster_state:ok'))) return;
      if (performance.now() > deadline) throw new Error('no replica took over within 30 s');
    }
  }

  async function restartPostgres(): Promise<void> {
    assert.ok(pg);
    pg.crash();
    await sleep(1500);
    pg.start();
  }

  /** kill -9 of a node while requests are in flight on it, and a new node in its place. */
  async function killLatchkeyNode(): Promise<void> {
    const index = Math.floor(random() * nodes.length);
    const victim = nodes[index] as LatchkeyProcess;
    const dead = nodes.filter((n) => !n.alive());
    if (dead.length > 0) throw new Error(`a latchkey node died before the kill:\n${dead.map((n) => n.output()).join('\n---\n')}`);
    process.kill(victim.pid, 'SIGKILL');
    killed.push(victim);
    // Until the new node is up, requests picked for this one fail at the socket.
    nodes[index] = await startLatchkey(config);
  }

  /** The killed Redis master: its port, the slot ranges it served, its replication offsets just before. */
  const killSite = { port: 0, slots: [] as (readonly [number, number])[], replication: '' };

  /**
   * Keys the master holds that its replica lacks, and the reverse (how many, and a few of them):
   * besides writes in flight, none. Read with SCAN on each node, just before the master is killed.
   */
  async function replicaDifference(masterPort: number, replicaPort: number): Promise<string> {
    const master = new Redis({ port: masterPort, lazyConnect: true });
    const replica = new Redis({ port: replicaPort, lazyConnect: true });
    master.on('error', () => {});
    replica.on('error', () => {});
    try {
      await Promise.all([master.connect(), replica.connect()]);
      await replica.readonly();
      const scan = async (client: Redis) => {
        const keys: string[] = [];
        let cursor = '0';
        do {
          const [next, batch] = await client.scan(cursor, 'COUNT', 1000);
          cursor = next;
          keys.push(...batch);
        } while (cursor !== '0');
        return keys;
      };
      const [onMaster, onReplica] = await Promise.all([scan(master), scan(replica)]);
      const mset = new Set(onMaster);
      const rset = new Set(onReplica);
      const missing = onMaster.filter((k) => !rset.has(k));
      const extra = onReplica.filter((k) => !mset.has(k));
      const some = (keys: string[]) => keys.slice(0, 4).map((k) => k.slice(0, 24)).join(' ');
      return `replica lacked ${missing.length} keys ${some(missing)}, held ${extra.length} more ${some(extra)}`;
    } catch (error) {
      return `replica not compared: ${(error as Error).message}`;
    } finally {
      master.disconnect();
      replica.disconnect();
    }
  }

  /** The slot ranges `port` serves, from CLUSTER NODES (`<id> <ip:port@bus> <flags> … <link> <slots…>`). */
  function victimSlots(nodesText: string, port: number): (readonly [number, number])[] {
    const line = nodesText.split('\n').find((l) => l.split(' ')[1]?.split('@')[0]?.endsWith(`:${port}`) === true);
    return (line?.split(' ').slice(8) ?? []).filter((r) => /^\d+(-\d+)?$/.test(r)).map((r) => {
      const [from, to = from] = r.split('-').map(Number) as [number, number?];
      return [from, to] as const;
    });
  }

  const onKilledMaster = (key: string): boolean => killSite.slots.some(([from, to]) => keySlot(key) >= from && keySlot(key) <= to);

  const FAULTS: readonly { at: number; name: string; run: () => Promise<void> }[] = [
    { at: 0.2, name: 'redis_master_killed', run: killRedisMaster },
    { at: 0.45, name: 'postgres_restarted', run: restartPostgres },
    { at: 0.7, name: 'latchkey_node_killed', run: killLatchkeyNode },
  ];

  // -------------------------------------------------------------------------------------------
  // after the storm

  /** Status of GET /v1/user/current with each session's token on each node; sids the admin list shows. */
  const finalAnswers = new Map<Tracked, number[]>();
  /** The same answers with the error code and the ending's reason, for a failure's explanation. */
  const finalCodes = new Map<Tracked, string[]>();
  const listed = new Map<UserState, any[]>();
  const dangling = { before: 0, beforeUnattributed: [] as string[], after: 0 };
  /** Users with more than one APP session in the store (the admin list), for the summary. */
  const storeAppSessions: string[] = [];
  /** Sessions in the store that no answered login handed out and no unknown-outcome login can account for. */
  const unaccounted: string[] = [];
  const all = () => users.flatMap((u) => u.sessions);
  const byVerdict = (wanted: Verdict) => all().filter((s) => verdict(s) === wanted);

  /** Settled means settled: a 503 now would be a node that did not recover, so it is retried briefly, then reported. */
  async function settledCall(target: LatchkeyProcess, method: string, path: string, token?: string): Promise<Answer> {
    for (let attempt = 0; ; attempt += 1) {
      const answer = await send(target, method, path, undefined, token);
      if (!UNKNOWN.includes(answer.status) || attempt === 5) return answer;
      await sleep(500);
    }
  }

  /**
   * Sessions the admin list shows that no login handed a token for, beyond what the user's logins
   * with an unknown outcome of that flag can have left (each at most one). One more APP session
   * than that is two live APP sessions in the store: exclusivity broken where no token shows it.
   */
  function unaccountedSessions(user: UserState): string[] {
    const tracked = new Set(user.sessions.map((s) => s.sid));
    return ([APP, WEB, PC] as const).flatMap((flag) => {
      const untracked = (listed.get(user) ?? []).filter((s) => s.device_flag === flag && !tracked.has(s.sid));
      return untracked.length > user.unknownLogins[flag]
        ? [`${user.username} flag ${flag}: ${untracked.length} session(s) in the store no login handed out, ${user.unknownLogins[flag]} login(s) with an unknown outcome`]
        : [];
    });
  }

  async function inParallel<T>(items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
    let index = 0;
    const worker = async () => {
      while (index < items.length) await work(items[index++] as T);
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  }

  /** Index entries (user:{uid}:sessions) whose session record is gone, read from the cluster itself. */
  async function danglingEntries(): Promise<{ user: UserState; sid: string; flag: string }[]> {
    assert.ok(cluster);
    const alive = cluster.nodes.filter((n) => n.process.exitCode === null && n.process.signalCode === null);
    const client = new Cluster(alive.map((n) => ({ host: '127.0.0.1', port: n.port })));
    client.on('error', () => {});
    try {
      const found: { user: UserState; sid: string; flag: string }[] = [];
      for (const user of users) {
        const index = await client.hgetall(`user:{${user.uid}}:sessions`);
        for (const [sid, entry] of Object.entries(index)) {
          if ((await client.exists(`sess:${sid}`)) === 0) found.push({ user, sid, flag: entry.split(':')[0] ?? '?' });
        }
      }
      return found;
    } finally {
      client.disconnect();
    }
  }

  /** What the store holds of each session now: its record, its index entry, and its tombstone's reason. */
  async function storeView(sessions: readonly { readonly uid: string; readonly sid: string }[], at: (ms: number) => string): Promise<string[]> {
    assert.ok(cluster);
    const alive = cluster.nodes.filter((n) => n.process.exitCode === null && n.process.signalCode === null);
    const client = new Cluster(alive.map((n) => ({ host: '127.0.0.1', port: n.port })));
    client.on('error', () => {});
    const where = (key: string) => (onKilledMaster(key) ? '(killed master)' : '');
    try {
      return await Promise.all(sessions.map(async (s) => {
        const index = `user:{${s.uid}}:sessions`;
        const [record, entry, ended] = await Promise.all([
          client.exists(`sess:${s.sid}`), client.hexists(index, s.sid), client.get(`ended:${s.sid}`),
        ]);
        const tomb = ended === null ? null : JSON.parse(ended);
        // ended_at in Unix ms, placed on this process's clock (an expiry written at creation lies ahead).
        const reason = tomb === null ? 'none' : `${tomb.reason}@${at(tomb.ended_at - performance.timeOrigin)}`;
        return `record ${record === 1 ? 'yes' : 'no'}${where(`sess:${s.sid}`)} index ${entry === 1 ? 'yes' : 'no'}${where(index)} tombstone ${reason}${where(`ended:${s.sid}`)}`;
      }));
    } catch (error) {
      return sessions.map(() => `store unreadable: ${(error as Error).message}`);
    } finally {
      client.disconnect();
    }
  }

  /**
   * A failure's explanation, one line per session (times in ms from the Redis master kill): its
   * login, its ending, the revoke-others and bans that could touch it, each node's answer now, and
   * what the store holds of it; first the faults' spans (start, repaired, tail's end), the killed
   * master, and the admin's session (bans and lists depend on it). At most 12 sessions.
   */
  async function explain(offenders: readonly Tracked[]): Promise<string> {
    const sessions = offenders.slice(0, 12);
    const t0 = faultSpans.find((f) => f.name === 'redis_master_killed')?.start ?? 0;
    const at = (ms: number | undefined) => (ms === undefined || !Number.isFinite(ms) ? 'never' : `${ms >= t0 ? '+' : ''}${Math.round(ms - t0)}`);
    const atTick = (t: number) => at(tickMs.get(t));
    const sid = (value: string) => value.slice(0, 8);
    const [adminView = '', ...views] = await storeView([admin, ...sessions.map((s) => ({ uid: s.user.uid, sid: s.sid }))], at);
    const head = `faults ${faultSpans.map((f) => `${f.name} ${at(f.start)}/${at(f.repaired)}/${at(f.end)}`).join(', ')}; killed master ${killSite.port} (slots ${killSite.slots.map((r) => r.join('-')).join(' ')}): ${killSite.replication}`;
    const adminLine = `admin ${sid(admin.sid)}: ${adminLost === null ? 'valid throughout' : `first 401 at ${at(adminLost.at)} on node ${adminLost.node} (${adminLost.what})`} | ${adminView}`;
    const more = offenders.length > sessions.length ? [`… and ${offenders.length - sessions.length} more`] : [];
    return [head, adminLine, ...sessions.map((s, i) => {
      const caller = (keep: string) => s.user.sessions.find((c) => c.sid === keep)?.method ?? '?';
      const others = s.user.revokeOthers.filter((r) => r.respondedAt > s.loginSentAt)
        .map((r) => `${atTick(r.sentAt)}..${atTick(r.respondedAt)} ${r.status} keep ${sid(r.keepSid)}(${caller(r.keepSid)})`);
      const bans = s.user.bans.filter((b) => b.respondedAt > s.loginSentAt).map((b) => `${b.kind} ${atTick(b.sentAt)}..${atTick(b.respondedAt)} ${b.status}`);
      return `${s.user.username} ${sid(s.sid)} flag ${s.flag} ${s.method} login ${atTick(s.loginSentAt)}..${at(s.answeredAtMs)}`
        + ` ended ${s.endedBy ?? '-'} ${s.endedAt === null ? '' : atTick(s.endedAt)} verdict ${verdict(s)}`
        + ` | revoke_others ${others.join(', ') || '-'} | ${bans.join(', ') || 'no bans'}`
        + ` | nodes ${(finalCodes.get(s) ?? []).join(', ')} listed ${(listed.get(s.user) ?? []).some((l) => l.sid === s.sid) ? 'yes' : 'no'} | ${views[i]}`;
    }), ...more].join('\n');
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-scale-'));
    [cluster, pg] = await Promise.all([startRedisCluster({ masters: 3, replicas: 1 }), startPrivatePostgres({ maxConnections: 80 })]);
    config = {
      store: cluster.storeUrl,
      db: pg.url,
      password: { memory_cost: 1024, time_cost: 1 },
      device_policies: { web: { mode: 'multi', cap: MULTI_CAP }, pc: { mode: 'multi', cap: MULTI_CAP } },
      rate_limits: {
        login: { max: 1_000_000 }, register: { max: 1_000_000 }, qr_create: { max: 1_000_000 }, qr_exchange: { max: 1_000_000 },
      },
      login_throttle: { per_account_ip: 1000, per_account: 100_000 },
    };
    configPath = join(dir, 'config.json');
    writeFileSync(configPath, JSON.stringify(config));
    // The first node migrates the account schema; the admin is promoted with the CLI, as an operator would.
    nodes.push(await startLatchkey(config));
    const registered = await send(nodes[0] as LatchkeyProcess, 'POST', '/v1/user/register', { username: 'storm-admin', password: PASSWORD, flag: WEB });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    admin = { uid: registered.body.uid, token: registered.body.token, sid: registered.body.sid };
    const promoted = await runLatchkeyCli(['user', 'role', admin.uid, 'admin', '--config', configPath]);
    assert.equal(promoted.code, 0, describeRun(promoted));
    nodes.push(...(await Promise.all([startLatchkey(config), startLatchkey(config)])));

    for (let i = 0; i < USERS; i += 1) {
      users.push({
        username: `scale${i}`, uid: '', sessions: [], appLogins: [], revokeOthers: [], bans: [],
        banBusy: false, banned: false, activeSince: 0, attempts: { 0: 0, 1: 0, 2: 0 }, unknownOutcomes: 0, unknownLogins: { 0: 0, 1: 0, 2: 0 },
      });
    }
    await inParallel(users, (user) => passwordLogin(user, APP, '/v1/user/register'));
    assert.deepEqual(users.filter((u) => u.uid === '').map((u) => u.username), [], 'every user registered');

    const started = performance.now();
    const faultsRunning: Promise<void>[] = [];
    let issued = 0;
    // The storm outlasts every fault until something has succeeded after it (a node restarted on a
    // loaded machine can take longer than a small SCALE_OPS lasts), up to twice the planned ops.
    const servedAfterEveryFault = () => FAULTS.every(({ name }) => (servedAfter[name] ?? 0) > 0);
    const stormGoesOn = () => issued < OPS || (issued < 2 * OPS && !servedAfterEveryFault());
    const worker = async () => {
      while (stormGoesOn()) {
        issued += 1;
        for (const planned of FAULTS) {
          if (issued === Math.floor(planned.at * OPS)) faultsRunning.push(fault(planned.name, planned.run));
        }
        await oneOp();
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    await Promise.all(faultsRunning);
    counts.ops = issued;
    stormMs = performance.now() - started;

    // Settled: every token on every node; the dangling index entries as the storm left them; then
    // the admin's list of each user (a read of the index, which prunes them); then the index again.
    const sessions = all();
    await inParallel(sessions, async (session) => {
      const answers: Answer[] = [];
      for (const n of nodes) answers.push(await settledCall(n, 'GET', '/v1/user/current', session.token));
      finalAnswers.set(session, answers.map((a) => a.status));
      finalCodes.set(session, answers.map((a) => [a.status, a.body?.code, a.body?.details?.reason].filter((part) => part !== undefined).join(' ')));
    });
    const leftBehind = await danglingEntries();
    dangling.before = leftBehind.length;
    dangling.beforeUnattributed = leftBehind.filter((d) => d.user.unknownOutcomes === 0).map((d) => `${d.user.username} ${d.sid} flag ${d.flag}`);
    await inParallel(users, async (user) => {
      const answer = await settledCall(pick(nodes), 'GET', `/v1/manager/users/${user.uid}/sessions`, admin.token);
      if (answer.status !== 200) violations.push(`admin session list of ${user.username}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
      listed.set(user, answer.body?.sessions ?? []);
    });
    dangling.after = (await danglingEntries()).length;
    for (const user of users) {
      const apps = (listed.get(user) ?? []).filter((s) => s.device_flag === APP);
      if (apps.length > 1) storeAppSessions.push(`${user.username}: ${apps.length} APP sessions in the store (unknown APP logins: ${user.unknownLogins[APP]})`);
      unaccounted.push(...unaccountedSessions(user));
    }
  });

  after(async () => {
    await Promise.all([...nodes, ...killed].map((n) => n.stop()));
    await cluster?.stop();
    pg?.destroy();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('every operation ran, every answer was one the contract allows, and the nodes serve again after each fault', async () => {
    assert.ok(counts.ops >= OPS, `every planned operation ran (${counts.ops} of ${OPS})`);
    if (violations.length > 0) assert.fail(`seed ${SEED}: ${violations.length} violations, the first 20:\n${violations.slice(0, 20).join('\n')}\n${await explain([])}`);
    for (const n of nodes) assert.ok(n.alive(), `a latchkey process died:\n${n.output()}`);
    for (const { name } of FAULTS) assert.ok((servedAfter[name] ?? 0) > 0, `nothing succeeded after ${name}`);
  });

  it('no ended token authenticates on any node', async () => {
    const endedSessions = byVerdict('ended');
    assert.ok(endedSessions.length >= OPS / 10, `only ${endedSessions.length} ended tokens to check`);
    const passed = endedSessions.filter((s) => (finalAnswers.get(s) ?? []).some((status) => status !== 401));
    if (passed.length > 0) assert.fail(`seed ${SEED}: ${passed.length} ended tokens that did not answer 401\n${await explain(passed)}`);
  });

  it('every session nothing could have ended authenticates on every node', async () => {
    const live = byVerdict('live');
    assert.ok(live.length >= USERS / 2, `only ${live.length} live tokens to check`);
    const failed = live.filter((s) => (finalAnswers.get(s) ?? []).some((status) => status !== 200));
    if (failed.length > 0) assert.fail(`seed ${SEED}: ${failed.length} untouched sessions that did not validate\n${await explain(failed)}`);
  });

  it('tokens with an unknown outcome: every node agrees, and a session validates exactly when the admin list shows it', async () => {
    const mismatched = all().flatMap((s) => {
      const answers = finalAnswers.get(s) ?? [];
      const shown = (listed.get(s.user) ?? []).some((l) => l.sid === s.sid);
      const agree = answers.every((status) => status === answers[0]) && (answers[0] === 200 || answers[0] === 401);
      // A lost index entry (indexMayBeLost) is a session the list cannot show but whose record lives.
      // So is an ending whose GETDEL was lost (endMayBeLost): the record is back, its index entry gone.
      const listAgrees = shown === (answers[0] === 200) || ((indexMayBeLost(s) || endMayBeLost(s)) && !shown);
      return agree && listAgrees ? [] : [s];
    });
    if (mismatched.length > 0) assert.fail(`seed ${SEED}: ${mismatched.length} tokens whose nodes or list disagree\n${await explain(mismatched)}`);
  });

  it('exclusive means one: at most one APP token validates per user', () => {
    const doubled = users.filter((u) => u.sessions.filter((s) => s.flag === APP && finalAnswers.get(s)?.[0] === 200).length > 1)
      .map((u) => u.username);
    assert.deepEqual(doubled, [], `seed ${SEED}: users with two valid APP tokens`);
  });

  it('the store holds no session but those logins handed out or logins with an unknown outcome may have left', () => {
    assert.deepEqual(unaccounted, [], `seed ${SEED}: sessions in the store nobody can account for (APP doubles: ${JSON.stringify(storeAppSessions)})`);
  });

  it('every unknown outcome came while a fault was under way, and no request hung', () => {
    assert.equal(counts.hung, 0, `seed ${SEED}: requests without an answer within ${REQUEST_TIMEOUT_MS} ms`);
    assert.equal(unknownByFault.none ?? 0, 0, `seed ${SEED}: 503s or dropped connections with no fault under way: ${JSON.stringify(unknownByFault)}`);
  });

  it('no index entry points at a dead session once the index has been read', () => {
    assert.deepEqual(dangling.beforeUnattributed, [], 'dangling index entries of users whose operations all had a known outcome');
    assert.equal(dangling.after, 0, 'index entries still pointing at no session after the list read the index');
  });

  it('prints a summary', async () => {
    // What the failover excuses covered and still validates: writes the failover did lose.
    const excused = all().filter((s) => ((indexMayBeLost(s) && (s.endedBy === 'revoke_others' || s.endedBy === 'ban')) || endMayBeLost(s))
      && finalAnswers.get(s)?.[0] === 200);
    if (excused.length > 0) console.log(`cluster storm: endings the failover excuses and that did not hold\n${await explain(excused)}`);
    const summary = {
      seed: SEED,
      ops: counts.ops,
      requests: counts.requests,
      logins: counts.logins,
      qr_logins: counts.qrLogins,
      qr_abandoned: counts.qrAbandoned,
      logouts: counts.logouts,
      revokes: counts.revokes,
      revoke_others: counts.revokeOthers,
      bans: counts.bans,
      unbans: counts.unbans,
      mid_storm_rechecks: counts.rechecks,
      ...verdictCounts(byVerdict),
      answered_503: counts.unavailable,
      socket_errors: counts.socketErrors,
      hung: counts.hung,
      unknown_by_fault: unknownByFault,
      logins_answered_around_master_kill: all().filter(indexMayBeLost).length,
      endings_answered_around_master_kill: all().filter(endMayBeLost).length,
      excused_endings_that_did_not_hold: excused.length,
      killed_master: killSite.replication,
      fault_ms: faultTimings,
      dangling_index_entries_before_read: dangling.before,
      store_app_doubles: storeAppSessions,
      nodes: nodes.length,
      concurrency: CONCURRENCY,
      storm_s: Number((stormMs / 1000).toFixed(1)),
    };
    console.log(`cluster storm summary ${JSON.stringify(summary)}`);
  });
});
