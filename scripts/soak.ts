/**
 * `npm run soak -- [--minutes 10] [--validations 100] [--logins 5] [--users 50]`: a steady load on
 * one latchkey node (its own process) on a private redis-server, to catch slow leaks that a short
 * test never shows. At fixed rates it logs users in (all device flags, production argon2id), has
 * their live sessions validated (`GET /v1/user/current`) and logs sessions out, so the number of
 * live sessions stays level. Every 10 s it samples the node's /metrics (resident memory, heap,
 * active handles) and the Redis key count (DBSIZE). At the end it says whether memory is flat,
 * handles do not grow, and Kv keys stay within what the live sessions explain. Not run in CI.
 *
 * Everything is on loopback; the load is bounded (at most MAX_IN_FLIGHT requests at once; a tick
 * that would exceed it is counted as dropped) and it stops by itself.
 */
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startLatchkey, startRedisServer, type LatchkeyProcess, type RedisServerProcess } from '../test/support/processes.ts';

const HELP = `npm run soak -- [--minutes M] [--validations N] [--logins N] [--users N]
  --minutes M       how long the steady load runs (default 10)
  --validations N   GET /v1/user/current per second (default 100)
  --logins N        password logins per second, and as many logouts (default 5)
  --users N         accounts the load spreads over (default 50)
`;

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    validations: { type: 'string', default: '100' },
    logins: { type: 'string', default: '5' },
    users: { type: 'string', default: '50' },
    help: { type: 'boolean' },
  },
});
if (values.help === true) {
  process.stdout.write(HELP);
  process.exit(0);
}
const minutes = Number(values.minutes);
const validationRate = Number(values.validations);
const loginRate = Number(values.logins);
const userCount = Number(values.users);
if (![minutes, validationRate, loginRate, userCount].every((n) => Number.isFinite(n) && n > 0) || minutes > 24 * 60) {
  process.stderr.write(HELP);
  process.exit(1);
}

const SAMPLE_EVERY_MS = 10_000;
const TICK_MS = 100;
const MAX_IN_FLIGHT = 64;
const PASSWORD = 'soak test password';
const METRICS_KEY = 'soak-metrics-bearer-key-0123456789abcdef';
/** The node's defaults: APP exclusive, Web and PC at most 10 sessions each. */
const KEEP_PER_FLAG: Record<number, number> = { 0: 1, 1: 10, 2: 10 };

// ----------------------------------------------------------------------------------------------
// live sessions, as the node's device policies say they should be

interface LiveSession {
  readonly token: string;
  readonly user: number;
  readonly flag: number;
}

class LiveSessions {
  readonly #byUserFlag = new Map<string, LiveSession[]>();
  #all: LiveSession[] = [];
  readonly #tokens = new Set<string>();

  add(session: LiveSession): void {
    const key = `${session.user}:${session.flag}`;
    const list = [...(this.#byUserFlag.get(key) ?? []), session];
    // Past the policy the oldest sessions were ended by the node: no longer live.
    const ended = list.splice(0, Math.max(0, list.length - (KEEP_PER_FLAG[session.flag] ?? 1)));
    this.#byUserFlag.set(key, list);
    for (const gone of ended) this.#forget(gone);
    this.#all.push(session);
    this.#tokens.add(session.token);
  }

  remove(session: LiveSession): void {
    const key = `${session.user}:${session.flag}`;
    this.#byUserFlag.set(key, (this.#byUserFlag.get(key) ?? []).filter((s) => s !== session));
    this.#forget(session);
  }

  #forget(session: LiveSession): void {
    this.#all = this.#all.filter((s) => s !== session);
    this.#tokens.delete(session.token);
  }

  has(session: LiveSession): boolean {
    return this.#tokens.has(session.token);
  }

  pick(): LiveSession | undefined {
    return this.#all[Math.floor(Math.random() * this.#all.length)];
  }

  get size(): number {
    return this.#all.length;
  }
}

// ----------------------------------------------------------------------------------------------
// load

interface OpStats {
  count: number;
  unexpected: number;
  latencies: number[];
}

const stats: Record<'login' | 'validate' | 'logout', OpStats> = {
  login: { count: 0, unexpected: 0, latencies: [] },
  validate: { count: 0, unexpected: 0, latencies: [] },
  logout: { count: 0, unexpected: 0, latencies: [] },
};
let inFlight = 0;
let dropped = 0;
/** `user:flag` with a login in flight: that login may end the pair's oldest session any moment. */
const loggingIn = new Map<string, number>();

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

async function request(node: LatchkeyProcess, method: string, path: string, body?: unknown, token?: string): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token !== undefined) headers.token = token;
  const response = await fetch(node.url + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  return { status: response.status, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : { text } };
}

async function timedOp(kind: keyof typeof stats, expected: number, work: () => Promise<{ status: number }>): Promise<void> {
  if (inFlight >= MAX_IN_FLIGHT) {
    dropped += 1;
    return;
  }
  inFlight += 1;
  const started = performance.now();
  try {
    const { status } = await work();
    stats[kind].count += 1;
    if (status !== expected) stats[kind].unexpected += 1;
  } catch {
    stats[kind].unexpected += 1;
  } finally {
    stats[kind].latencies.push(performance.now() - started);
    inFlight -= 1;
  }
}

function login(node: LatchkeyProcess, live: LiveSessions): Promise<void> {
  const user = Math.floor(Math.random() * userCount);
  const flag = Math.floor(Math.random() * 3);
  const key = `${user}:${flag}`;
  return timedOp('login', 200, async () => {
    loggingIn.set(key, (loggingIn.get(key) ?? 0) + 1);
    try {
      const answer = await request(node, 'POST', '/v1/user/login', { username: `soak${user}`, password: PASSWORD, flag });
      const token = answer.body.token;
      if (answer.status === 200 && typeof token === 'string') live.add({ token, user, flag });
      return answer;
    } finally {
      loggingIn.set(key, (loggingIn.get(key) ?? 1) - 1);
    }
  });
}

function validate(node: LatchkeyProcess, live: LiveSessions): Promise<void> {
  const session = live.pick();
  if (session === undefined) return Promise.resolve();
  const key = `${session.user}:${session.flag}`;
  // A logout or a newer login may end it while this request runs: 401 is then right, not a leak.
  return timedOp('validate', 200, async () => {
    const racing = (loggingIn.get(key) ?? 0) > 0;
    const answer = await request(node, 'GET', '/v1/user/current', undefined, session.token);
    const ended = !live.has(session) || racing || (loggingIn.get(key) ?? 0) > 0;
    return { status: answer.status === 401 && ended ? 200 : answer.status };
  });
}

function logout(node: LatchkeyProcess, live: LiveSessions, level: number): Promise<void> {
  // Logins that replace a session (APP, or past the cap) already end one: log out only above the
  // starting level, so the number of live sessions stays level.
  const session = live.size > level ? live.pick() : undefined;
  if (session === undefined) return Promise.resolve();
  live.remove(session);
  const key = `${session.user}:${session.flag}`;
  return timedOp('logout', 200, async () => {
    const racing = (loggingIn.get(key) ?? 0) > 0;
    const answer = await request(node, 'POST', '/v1/user/quit', undefined, session.token);
    // A login of the same user and flag may have ended it first (exclusive APP, or past the cap).
    const replaced = racing || (loggingIn.get(key) ?? 0) > 0;
    return { status: answer.status === 401 && replaced ? 200 : answer.status };
  });
}


// ----------------------------------------------------------------------------------------------
// samples and verdict

interface Sample {
  readonly atS: number;
  readonly rssMb: number;
  readonly heapMb: number;
  readonly handles: number;
  readonly keys: number;
  /** `seen:<sid>` keys still without a session record a second after they were seen so. */
  readonly orphans: number;
  readonly live: number;
}

/** Key counts by shape (`sess:*`, `user:{uid}:slot:0`, …), for the closing report. */
async function keyShapes(redis: Redis): Promise<Map<string, number>> {
  const shapes = new Map<string, number>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const shape = key.replace(/\{[^}]*\}/, '{uid}').replace(/[A-Za-z0-9_-]{20,}/g, '*');
      shapes.set(shape, (shapes.get(shape) ?? 0) + 1);
    }
  } while (cursor !== '0');
  return shapes;
}

/** Of these last-seen keys, those that exist while their session record does not. */
async function withoutSession(redis: Redis, keys: readonly string[]): Promise<string[]> {
  const pipeline = redis.pipeline();
  for (const key of keys) pipeline.exists(key).exists(`sess:${key.slice('seen:'.length)}`);
  const results = ((await pipeline.exec()) ?? []).map(([, n]) => n);
  return keys.filter((_, i) => results[2 * i] === 1 && results[2 * i + 1] === 0);
}

/**
 * Last-seen keys without a session record that stay so for a second: a logout in flight deletes
 * the record first and the last-seen key a moment later, which is not a leak.
 */
async function orphanedLastSeen(redis: Redis): Promise<number> {
  let cursor = '0';
  const suspects: string[] = [];
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', 'seen:*', 'COUNT', 1000);
    cursor = next;
    suspects.push(...(await withoutSession(redis, keys)));
  } while (cursor !== '0');
  if (suspects.length === 0) return 0;
  await sleep(1000);
  return (await withoutSession(redis, suspects)).length;
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function sample(node: LatchkeyProcess, redis: Redis, live: LiveSessions, startedAt: number): Promise<Sample> {
  const headers = { authorization: `Bearer ${METRICS_KEY}` };
  const text = await (await fetch(`${node.url}/metrics`, { headers, signal: AbortSignal.timeout(5000) })).text();
  return {
    atS: Math.round((performance.now() - startedAt) / 1000),
    rssMb: metric(text, 'latchkey_process_resident_memory_bytes') / 2 ** 20,
    heapMb: metric(text, 'latchkey_nodejs_heap_size_used_bytes') / 2 ** 20,
    handles: metric(text, 'latchkey_nodejs_active_handles_total'),
    keys: await redis.dbsize(),
    orphans: await orphanedLastSeen(redis),
    live: live.size,
  };
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};
const percentile = (values: readonly number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
};

/**
 * Compares the middle third of the run with the last third: the first third is warm-up (JIT, pools).
 * Memory is sampled at arbitrary points of the garbage collector's sawtooth, so medians move with
 * its phase; a leak shows as new highs of RSS and a rising floor of the heap (what survives a GC).
 */
function verdict(samples: readonly Sample[]): { lines: string[]; ok: boolean } {
  const third = Math.max(1, Math.floor(samples.length / 3));
  const middle = samples.slice(third, 2 * third);
  const last = samples.slice(2 * third);
  const pick = (list: readonly Sample[], field: keyof Sample) => list.map((s) => s[field]);
  const rssGrowth = Math.max(...pick(last, 'rssMb')) - Math.max(...pick(middle, 'rssMb'));
  const heapGrowth = Math.min(...pick(last, 'heapMb')) - Math.min(...pick(middle, 'heapMb'));
  const handlesGrowth = Math.max(...pick(last, 'handles')) - Math.max(...pick(middle, 'handles'));
  // Per live session: its record and its last-seen key. Per account: the session index and the APP
  // slot. Plus a few shared counters (the login rate limit).
  const keyBound = (s: Sample) => 2 * s.live + 2 * userCount + 10;
  const overBound = samples.filter((s) => s.keys > keyBound(s));
  const keysMiddle = median(pick(middle, 'keys'));
  const keysLast = median(pick(last, 'keys'));
  const orphans = Math.max(...pick(samples, 'orphans'));
  const memoryFlat = rssGrowth <= Math.max(16, 0.1 * Math.max(...pick(middle, 'rssMb')))
    && heapGrowth <= Math.max(10, 0.2 * Math.min(...pick(middle, 'heapMb')));
  const handlesFlat = handlesGrowth <= 5;
  const keysBounded = overBound.length === 0 && orphans === 0 && keysLast <= keysMiddle * 1.1 + 10;
  const yes = (ok: boolean) => (ok ? 'yes' : 'NO');
  return {
    ok: memoryFlat && handlesFlat && keysBounded,
    lines: [
      `memory flat:        ${yes(memoryFlat)} (highest RSS ${rssGrowth >= 0 ? '+' : ''}${rssGrowth.toFixed(1)} MB, lowest heap ${heapGrowth >= 0 ? '+' : ''}${heapGrowth.toFixed(1)} MB, last third against the middle third)`,
      `handles flat:       ${yes(handlesFlat)} (max ${Math.max(...pick(middle, 'handles'))} → ${Math.max(...pick(last, 'handles'))})`,
      `keys within live:   ${yes(keysBounded)} (median keys ${keysMiddle} → ${keysLast}; ` +
        `${overBound.length} sample(s) above 2 × live + 2 × users + 10; at most ${orphans} orphaned last-seen key(s))`,
    ],
  };
}

// ----------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  let redisServer: RedisServerProcess | undefined;
  let node: LatchkeyProcess | undefined;
  let redis: Redis | undefined;
  try {
    redisServer = await startRedisServer();
    node = await startLatchkey({
      store: redisServer.url,
      // The node's metrics are read over its API port, which answers /metrics only to this key.
      metrics: { port: 0, bearer_key: METRICS_KEY },
      // Production password hashing; only the load generator's own limits bound the rate.
      rate_limits: { login: { max: 1_000_000 }, register: { max: 1_000_000 } },
    });
    redis = new Redis(redisServer.url, { lazyConnect: true });
    await redis.connect();
    const target = node;
    process.stdout.write(`soak: ${minutes} min, ${validationRate} validations/s, ${loginRate} logins/s and logouts/s, ${userCount} users\n`);
    const live = new LiveSessions();
    for (let i = 0; i < userCount; i += 1) {
      const answer = await request(target, 'POST', '/v1/user/register', { username: `soak${i}`, password: PASSWORD, flag: 1 });
      const token = answer.body.token;
      if (answer.status !== 201 || typeof token !== 'string') throw new Error(`register soak${i}: ${answer.status} ${JSON.stringify(answer.body)}`);
      live.add({ token, user: i, flag: 1 });
    }
    // The starting population: about as many sessions as the logouts will keep level.
    for (let i = 0; i < userCount * 2; i += 1) await login(target, live);
    const level = live.size;

    const samples: Sample[] = [];
    const startedAt = performance.now();
    const endAt = startedAt + minutes * 60_000;
    let nextSample = startedAt;
    let tick = 0;
    const pending = new Set<Promise<void>>();
    const track = (work: Promise<void>) => {
      pending.add(work);
      void work.finally(() => pending.delete(work));
    };
    const print = (s: Sample) => {
      samples.push(s);
      process.stdout.write(`  t=${String(s.atS).padStart(4)} s  rss ${s.rssMb.toFixed(1)} MB  heap ${s.heapMb.toFixed(1)} MB  handles ${s.handles}  keys ${s.keys} (orphaned last-seen ${s.orphans})  live sessions ${s.live}\n`);
    };
    // Sampling runs beside the load, never pausing it (the orphan check waits a second).
    let sampling: Promise<void> | null = null;
    const redisClient = redis;
    while (performance.now() < endAt) {
      if (performance.now() >= nextSample && sampling === null) {
        sampling = sample(target, redisClient, live, startedAt).then(print).finally(() => {
          sampling = null;
        });
        nextSample += SAMPLE_EVERY_MS;
      }
      // Fractional rates spread over ticks: tick t issues floor(rate·(t+1)/10) − floor(rate·t/10).
      const due = (rate: number) => Math.floor((rate * (tick + 1)) / 10) - Math.floor((rate * tick) / 10);
      for (let i = 0; i < due(validationRate); i += 1) track(validate(target, live));
      for (let i = 0; i < due(loginRate); i += 1) track(login(target, live));
      for (let i = 0; i < due(loginRate); i += 1) track(logout(target, live, level));
      tick += 1;
      const nextTick = startedAt + tick * TICK_MS;
      await sleep(Math.max(0, nextTick - performance.now()));
    }
    await Promise.all(pending);
    await sampling;
    print(await sample(target, redis, live, startedAt));

    process.stdout.write('\nrequests (count, unexpected answers, p50 / p99 ms):\n');
    for (const [kind, s] of Object.entries(stats)) {
      process.stdout.write(`  ${kind.padEnd(9)} ${String(s.count).padStart(7)}  ${String(s.unexpected).padStart(4)}  ${percentile(s.latencies, 0.5).toFixed(1)} / ${percentile(s.latencies, 0.99).toFixed(1)}\n`);
    }
    process.stdout.write(`  dropped (over ${MAX_IN_FLIGHT} in flight): ${dropped}\n\n`);
    const result = verdict(samples);
    const unexpected = Object.values(stats).reduce((sum, s) => sum + s.unexpected, 0);
    const shapes = [...(await keyShapes(redis))].sort((a, b) => b[1] - a[1]).map(([shape, n]) => `${shape} ${n}`);
    process.stdout.write(`keys at the end: ${shapes.join(', ')}\n\n`);
    process.stdout.write(`${result.lines.join('\n')}\nunexpected answers: ${unexpected}\n`);
    return result.ok && unexpected === 0 ? 0 : 1;
  } finally {
    redis?.disconnect();
    await node?.stop();
    await redisServer?.stop();
  }
}

process.exit(await main());
