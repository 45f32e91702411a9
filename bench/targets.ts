/**
 * The servers under test, each in its own child process: the bare Fastify baseline, and latchkey
 * on its embedded SQLite store and on a private redis-server. Latchkey targets come with a pool of
 * live session tokens, each checked to answer 200 before any load is counted.
 */
import { fileURLToPath } from 'node:url';
import { startHttpProcess, startLatchkey, startRedisServer, type HttpProcess, type RedisServerProcess } from '../test/support/processes.ts';

export type TargetKey = 'bare' | 'sqlite' | 'redis';

export const TARGET_NAMES: Record<TargetKey, string> = {
  bare: 'bare fastify',
  sqlite: 'latchkey sqlite',
  redis: 'latchkey redis',
};

export interface Target {
  readonly key: TargetKey;
  readonly url: string;
  /** The route under load. */
  readonly path: string;
  readonly tokens: readonly string[];
  readonly serverPid: number;
  readonly redisPid: number | null;
  stop(): Promise<void>;
}

/** The Web policy's cap bounds the sessions of one user; more sessions take more users. */
const SESSIONS_PER_USER = 1000;
const PASSWORD = 'bench password';
const SETUP_IN_FLIGHT = 8;

export async function startTarget(key: TargetKey, sessions: number): Promise<Target> {
  if (key === 'bare') return startBare();
  const redis = key === 'redis' ? await startRedisServer() : null;
  let server: HttpProcess | null = null;
  const stop = async () => {
    await server?.stop();
    await redis?.stop();
  };
  try {
    server = await startLatchkey({
      // sqlite: the embedded default, sessions and accounts in one file of the node's data dir.
      ...(redis === null ? {} : { store: redis.url }),
      // Logins only prepare the token pool; their hashing cost is not what is measured.
      password: { memory_cost: 1024, time_cost: 1 },
      rate_limits: { login: { max: 1_000_000 }, register: { max: 1_000_000 } },
      device_policies: { web: { mode: 'multi', cap: SESSIONS_PER_USER } },
    });
    const tokens = await createSessions(server.url, sessions);
    await verifyTokens(server.url, tokens);
    return { key, url: server.url, path: '/v1/user/current', tokens, serverPid: server.pid, redisPid: redis?.pid ?? null, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function startBare(): Promise<Target> {
  const server = await startHttpProcess({
    name: 'bare fastify',
    args: [fileURLToPath(new URL('./bare-server.ts', import.meta.url))],
    listeningMessage: 'bare listening',
    healthPath: '/',
  });
  const check = await fetch(server.url);
  if (check.status !== 200 || (await check.text()) !== '{"ok":true}') throw new Error(`bare server answered ${check.status}`);
  return { key: 'bare', url: server.url, path: '/', tokens: [], serverPid: server.pid, redisPid: null, stop: () => server.stop() };
}

async function post(url: string, body: unknown): Promise<{ status: number; body: { token?: string } }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as { token?: string } };
}

/** One or more users, each with up to 1,000 Web sessions (register + logins). */
async function createSessions(url: string, count: number): Promise<string[]> {
  const tokens: string[] = [];
  const users = Math.ceil(count / SESSIONS_PER_USER);
  for (let u = 0; u < users; u += 1) {
    const username = `bench${u}`;
    const device = { device_id: 'bench', device_name: 'bench', device_model: 'autocannon' };
    const registered = await post(`${url}/v1/user/register`, { username, password: PASSWORD, flag: 1, device });
    if (registered.status !== 201 || registered.body.token === undefined) throw new Error(`register answered ${registered.status}`);
    tokens.push(registered.body.token);
    const wanted = Math.min(count, (u + 1) * SESSIONS_PER_USER);
    const worker = async () => {
      while (tokens.length < wanted) {
        const placeholder = tokens.push('') - 1;
        const login = await post(`${url}/v1/user/login`, { username, password: PASSWORD, flag: 1, device });
        if (login.status !== 200 || login.body.token === undefined) throw new Error(`login answered ${login.status}`);
        tokens[placeholder] = login.body.token;
      }
    };
    await Promise.all(Array.from({ length: SETUP_IN_FLIGHT }, worker));
  }
  return tokens;
}

/** Every token must validate before load starts: a 401 is never counted as throughput. */
async function verifyTokens(url: string, tokens: readonly string[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < tokens.length) {
      const token = tokens[next++] ?? '';
      const response = await fetch(`${url}/v1/user/current`, { headers: { token } });
      await response.arrayBuffer();
      if (response.status !== 200) throw new Error(`token ${next - 1} of ${tokens.length} answered ${response.status}, not 200`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}
