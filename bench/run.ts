/**
 * `npm run bench [-- <scenario>…]`: latchkey's benchmarks, in one run on one machine, each against
 * baselines measured in the same run. Scenarios (all of them, in this order, when none is named):
 *
 *   validate  GET /v1/user/current on SQLite, Redis and Redis Cluster vs its floor (a Fastify route doing
 *             one store read + JSON.parse, bench/floor-server.ts) and a bare Fastify route, in interleaved rounds,
 *             and vs better-auth's get-session on SQLite and Redis (with and without its cookie cache)
 *   login     argon2id password logins/s, and validation p99 while they run
 *   logout    logouts/s, and revoke-all of a user with 1,000 sessions
 *   growth    validation req/s and memory with 10^3, 10^5 (…) live sessions
 *   qr        QR login round trips/s
 *
 *   node bench/run.ts [scenario…] [--duration 10] [--warmup 3] [--connections 50] [--sessions 1000]
 *                     [--only sqlite,redis,cluster] [--rounds 3] [--sweep 10,200] [--growth-sizes 1000,100000] [--login-connections 8]
 *                     [--logout-sessions 20000] [--no-peers] [--check]
 *
 * Options may also come from the environment: BENCH_DURATION, BENCH_WARMUP, BENCH_CONNECTIONS,
 * BENCH_SESSIONS, BENCH_ROUNDS. --check exits 1 when a target is missed. Results: bench/results/<time>.json.
 * See bench/README.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { storeAvailable, type StoreKind } from './server.ts';
import type { Scenario, ScenarioOutcome, Settings } from './scenarios/scenario.ts';
import { validateScenario } from './scenarios/validate.ts';
import { loginScenario } from './scenarios/login.ts';
import { logoutScenario } from './scenarios/logout.ts';
import { growthScenario } from './scenarios/growth.ts';
import { qrScenario } from './scenarios/qr.ts';

const SCENARIOS: Record<string, Scenario> = {
  validate: validateScenario,
  login: loginScenario,
  logout: logoutScenario,
  growth: growthScenario,
  qr: qrScenario,
};
const STORES: readonly StoreKind[] = ['sqlite', 'redis', 'cluster'];
/** What runs without --only; validate adds a Redis Cluster when it can. */
const DEFAULT_STORES: readonly StoreKind[] = ['sqlite', 'redis'];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  allowNegative: true,
  options: {
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    sessions: { type: 'string' },
    only: { type: 'string' },
    sweep: { type: 'string' },
    rounds: { type: 'string' },
    'growth-sizes': { type: 'string' },
    'login-connections': { type: 'string' },
    'logout-sessions': { type: 'string' },
    check: { type: 'boolean' },
    peers: { type: 'boolean', default: true },
  },
});

function positive(name: string, value: string | undefined, env: string | undefined, fallback: number): number {
  const parsed = Number(value ?? env ?? fallback);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`--${name} must be a positive number, not ${value ?? env}`);
  return parsed;
}

function list<T extends string>(name: string, value: string | undefined, allowed: readonly T[], fallback: readonly T[]): T[] {
  if (value === undefined) return [...fallback];
  const items = value.split(',').map((item) => item.trim()).filter((item) => item !== '' && item !== 'bare');
  for (const item of items) if (!allowed.includes(item as T)) throw new Error(`${name}: unknown ${item}; use ${allowed.join(', ')}`);
  return items as T[];
}

const settings: Settings = {
  durationSeconds: positive('duration', values.duration, process.env.BENCH_DURATION, 10),
  warmupSeconds: positive('warmup', values.warmup, process.env.BENCH_WARMUP, 3),
  connections: Math.round(positive('connections', values.connections, process.env.BENCH_CONNECTIONS, 50)),
  rounds: Math.round(positive('rounds', values.rounds, process.env.BENCH_ROUNDS, 3)),
  sweepConnections: (values.sweep ?? '10,200').split(',').filter((count) => count !== '' && count !== '0').map((count) => Math.round(positive('sweep', count, undefined, 1))),
  sessions: Math.round(positive('sessions', values.sessions, process.env.BENCH_SESSIONS, 1000)),
  stores: list('--only', values.only, STORES, DEFAULT_STORES),
  validateOnCluster: values.only === undefined && storeAvailable('cluster'),
  growthSizes: (values['growth-sizes'] ?? '1000,100000').split(',').map((size) => Math.round(positive('growth-sizes', size, undefined, 1))),
  loginConnections: Math.round(positive('login-connections', values['login-connections'], undefined, 8)),
  logoutSessions: Math.round(positive('logout-sessions', values['logout-sessions'], undefined, 20_000)),
  peers: values.peers !== false,
};
const names = positionals.length === 0 ? Object.keys(SCENARIOS) : positionals;
for (const name of names) if (!(name in SCENARIOS)) throw new Error(`unknown scenario ${name}; use ${Object.keys(SCENARIOS).join(', ')}`);

const machine = {
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? 'unknown',
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
};
const started = new Date();
const outcomes: Record<string, ScenarioOutcome> = {};
for (const name of names) {
  const scenario = SCENARIOS[name];
  if (scenario === undefined) continue;
  const outcome = await scenario(settings, (line) => process.stdout.write(`${line}\n`));
  outcomes[name] = outcome;
  process.stdout.write(`\n== ${name} ==\n${outcome.text}\n\n`);
}

const missed = Object.values(outcomes).flatMap((o) => o.missed);
if (missed.length > 0) process.stdout.write(`targets missed:\n${missed.map((m) => `  ${m}`).join('\n')}\n`);

const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(resultsDir, { recursive: true });
const file = join(resultsDir, `${started.toISOString().replaceAll(':', '-').replace(/\.\d+Z$/, 'Z')}.json`);
const scenarios = Object.fromEntries(Object.entries(outcomes).map(([name, o]) => [name, { results: o.data, missed: o.missed }]));
writeFileSync(file, `${JSON.stringify({
  date: started.toISOString(), machine, loadGenerator: 'autocannon 9.0.0 (in the runner process)', settings, scenarios,
}, null, 2)}\n`);
process.stdout.write(`\nwritten: ${file}\n`);

if (values.check === true && missed.length > 0) process.exit(1);
