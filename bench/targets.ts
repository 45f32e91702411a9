/**
 * The servers of the validate scenario, each in its own child process: the bare Fastify baseline,
 * and latchkey on its embedded SQLite store and on a private redis-server. Latchkey targets come
 * with a pool of live session tokens made by real logins, each checked to answer 200 before any
 * load is counted.
 */
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHttpProcess, startRedisServer } from '../test/support/processes.ts';
import { floorTokens } from './floor.ts';
import type { LoadTarget } from './measure.ts';
import {
  BENCH_DEVICE, BENCH_PASSWORD, CHEAP_PASSWORDS, checkTokens, postJson, registerUser, startBenchServer, type StoreKind,
} from './server.ts';

/** The floors: a Fastify route doing one store read + JSON.parse (bench/floor-server.ts). */
export type FloorKey = 'floor-sqlite' | 'floor-redis';
export type TargetKey = 'bare' | FloorKey | StoreKind;

export const TARGET_NAMES: Record<TargetKey, string> = {
  bare: 'bare fastify',
  'floor-sqlite': 'floor: fastify + 1 sqlite read',
  'floor-redis': 'floor: fastify + 1 redis GET',
  sqlite: 'latchkey sqlite',
  redis: 'latchkey redis',
  cluster: 'latchkey redis cluster',
};

export interface Target extends LoadTarget {
  readonly key: TargetKey;
  readonly tokens: readonly string[];
}

export interface TargetOptions {
  /** Extra environment of the server process, e.g. NODE_OPTIONS=--cpu-prof for bench/profile.ts. */
  readonly env?: Record<string, string>;
}

/** The Web policy's cap bounds the sessions of one user; more sessions take more users. */
const SESSIONS_PER_USER = 1000;
const SETUP_IN_FLIGHT = 8;

export async function startTarget(key: TargetKey, sessions: number, options: TargetOptions = {}): Promise<Target> {
  if (key === 'bare') return startBare(options);
  if (key === 'floor-sqlite' || key === 'floor-redis') return startFloor(key, sessions, options);
  const server = await startBenchServer(key, {
    // Logins only prepare the token pool; their hashing cost is not what is measured.
    password: CHEAP_PASSWORDS,
    device_policies: { web: { mode: 'multi', cap: SESSIONS_PER_USER } },
  }, options.env);
  try {
    const tokens = await createSessions(server.url, sessions);
    await checkTokens(server.url, tokens, 200);
    return { key, url: server.url, path: '/v1/user/current', tokens, serverPid: server.pid, redisPids: server.redisPids, stop: server.stop };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

async function startBare(options: TargetOptions): Promise<Target> {
  const server = await startHttpProcess({
    env: options.env ?? {},
    name: 'bare fastify',
    args: [fileURLToPath(new URL('./bare-server.ts', import.meta.url))],
    listeningMessage: 'bare listening',
    healthPath: '/',
  });
  const check = await fetch(server.url);
  if (check.status !== 200 || (await check.text()) !== '{"ok":true}') throw new Error(`bare server answered ${check.status}`);
  return { key: 'bare', url: server.url, path: '/', tokens: [], serverPid: server.pid, redisPids: [], stop: () => server.stop() };
}

async function startFloor(key: FloorKey, sessions: number, options: TargetOptions): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-floor-'));
  const redis = key === 'floor-redis' ? await startRedisServer() : null;
  try {
    const server = await startHttpProcess({
      env: { ...options.env, FLOOR_SESSIONS: String(sessions) },
      name: TARGET_NAMES[key],
      args: [fileURLToPath(new URL('./floor-server.ts', import.meta.url)), redis === null ? 'sqlite' : 'redis', redis?.url ?? join(dir, 'floor.db')],
      listeningMessage: 'floor listening',
      healthPath: '/healthz',
    });
    const tokens = floorTokens(sessions);
    const stop = async () => {
      await server.stop();
      await redis?.stop();
      rmSync(dir, { recursive: true, force: true });
    };
    for (const token of [tokens[0], tokens.at(-1)]) {
      const check = await fetch(server.url, { headers: { token: token ?? '' } });
      await check.arrayBuffer();
      if (check.status !== 200) {
        await stop();
        throw new Error(`${TARGET_NAMES[key]} answered ${check.status} to a seeded token`);
      }
    }
    return { key, url: server.url, path: '/', tokens, serverPid: server.pid, redisPids: redis === null ? [] : [redis.pid], stop };
  } catch (error) {
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** One or more users, each with up to 1,000 Web sessions (register + logins). */
async function createSessions(url: string, count: number): Promise<string[]> {
  const tokens: string[] = [];
  const users = Math.ceil(count / SESSIONS_PER_USER);
  for (let u = 0; u < users; u += 1) {
    const username = `bench${u}`;
    tokens.push((await registerUser(url, username)).token);
    const wanted = Math.min(count, (u + 1) * SESSIONS_PER_USER);
    const worker = async () => {
      while (tokens.length < wanted) {
        const placeholder = tokens.push('') - 1;
        const login = await postJson(`${url}/v1/user/login`, { username, password: BENCH_PASSWORD, flag: 1, device: BENCH_DEVICE });
        if (login.status !== 200 || typeof login.body.token !== 'string') throw new Error(`login answered ${login.status}`);
        tokens[placeholder] = login.body.token;
      }
    };
    await Promise.all(Array.from({ length: SETUP_IN_FLIGHT }, worker));
  }
  return tokens;
}
