/**
 * A latchkey node under test, in its own child process (`node src/cli.ts serve`), on the embedded
 * SQLite store or on a private redis-server, and the few HTTP calls the scenarios set up with.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLatchkey, startRedisServer, type HttpProcess } from '../test/support/processes.ts';
import { redisClusterAvailable, startRedisCluster } from '../scripts/redis-cluster.ts';

/** cluster: 3 masters without replicas, on this machine like the rest. */
export type StoreKind = 'sqlite' | 'redis' | 'cluster';

/** Cluster runs only where redis-cli can create one. */
export function storeAvailable(store: StoreKind): boolean {
  return store !== 'cluster' || redisClusterAvailable();
}

export interface BenchServer {
  readonly store: StoreKind;
  readonly url: string;
  readonly pid: number;
  /** Every redis-server of the store; none for SQLite. */
  readonly redisPids: readonly number[];
  /** What the node's Kv connects to: `sqlite:<file>`, `redis://…` or `redis-cluster://…`. */
  readonly storeUrl: string;
  /** Bytes of the SQLite file and its WAL, or null on Redis. */
  storeFileBytes(): number | null;
  stop(): Promise<void>;
}

/** Benchmark defaults: no rate limits in the way; everything else is latchkey's default. */
const UNLIMITED = { max: 1_000_000 };
export const NO_RATE_LIMITS = {
  login: UNLIMITED, register: UNLIMITED, qr_create: UNLIMITED, qr_exchange: UNLIMITED,
};
/** For scenarios where logins only prepare the run: their hashing cost is not what is measured. */
export const CHEAP_PASSWORDS = { memory_cost: 1024, time_cost: 1 };

/**
 * A bench server's teardown, safe on a half-started one: the server first (it holds Redis
 * connections), then its Redis, then the data dir.
 */
export async function tearDown(server: { stop(): Promise<void> } | null, redis: { stop(): Promise<void> } | null, dataDir: string): Promise<void> {
  await server?.stop();
  await redis?.stop();
  rmSync(dataDir, { recursive: true, force: true });
}

export async function startBenchServer(
  store: StoreKind,
  config: Record<string, unknown>,
  env: Record<string, string> = {},
): Promise<BenchServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-bench-'));
  const sqliteFile = join(dataDir, 'latchkey.db');
  let redis: { readonly url: string; readonly pids: readonly number[]; stop(): Promise<void> } | null = null;
  let server: HttpProcess | null = null;
  const stop = () => tearDown(server, redis, dataDir);
  try {
    redis = await startRedis(store);
    // sqlite: sessions and accounts in one file of the data dir, as `npm start` does; on Redis the
    // accounts stay in that file.
    const storeUrl = redis === null ? `sqlite:${sqliteFile}` : redis.url;
    // The login throttle counts a check as a failure until it succeeds, so one address may only have
    // per_account_ip checks of one account in flight; the login scenario runs 8 at once by design.
    const throttle = { login_throttle: { per_account_ip: 1000, per_account: 100_000 } };
    server = await startLatchkey({ data_dir: dataDir, store: storeUrl, rate_limits: NO_RATE_LIMITS, ...throttle, ...config }, { env });
    return {
      store,
      url: server.url,
      pid: server.pid,
      redisPids: redis?.pids ?? [],
      storeUrl,
      storeFileBytes: () => (redis === null ? fileBytes(sqliteFile) + fileBytes(`${sqliteFile}-wal`) : null),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function startRedis(store: StoreKind): Promise<{ url: string; pids: readonly number[]; stop(): Promise<void> } | null> {
  if (store === 'sqlite') return null;
  if (store === 'redis') {
    const redis = await startRedisServer();
    return { url: redis.url, pids: [redis.pid], stop: () => redis.stop() };
  }
  const cluster = await startRedisCluster({ masters: 3, replicas: 0 });
  return { url: cluster.storeUrl, pids: cluster.nodes.map((node) => node.process.pid ?? -1), stop: () => cluster.stop() };
}

function fileBytes(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

export interface JsonAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

export async function postJson(url: string, body: unknown, token?: string): Promise<JsonAnswer> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== undefined) headers.token = token;
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

export const BENCH_PASSWORD = 'bench password';
export const BENCH_DEVICE = { device_id: 'bench', device_name: 'bench', device_model: 'autocannon' };

export interface RegisteredUser {
  readonly uid: string;
  readonly username: string;
  /** The session token of the registration's own login. */
  readonly token: string;
}

export async function registerUser(url: string, username: string, flag = 1): Promise<RegisteredUser> {
  const answer = await postJson(`${url}/v1/user/register`, { username, password: BENCH_PASSWORD, flag, device: BENCH_DEVICE });
  const { uid, token } = answer.body;
  if (answer.status !== 201 || typeof uid !== 'string' || typeof token !== 'string') {
    throw new Error(`register ${username} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  }
  return { uid, username, token };
}

/**
 * Every token must answer `expected` (200: it validates; 401: it was logged out) before its
 * figures count.
 */
export async function checkTokens(url: string, tokens: readonly string[], expected: 200 | 401): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < tokens.length) {
      const index = next++;
      const response = await fetch(`${url}/v1/user/current`, { headers: { token: tokens[index] ?? '' } });
      await response.arrayBuffer();
      if (response.status !== expected) {
        throw new Error(`token ${index} of ${tokens.length} answered ${response.status}, not ${expected}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}
