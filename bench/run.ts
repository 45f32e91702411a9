/**
 * `npm run bench`: token validation (`GET /v1/user/current`) on latchkey's SQLite and Redis stores
 * against a bare Fastify route, in one run on one machine. Prints requests/s, p50, p99, the ratio
 * to bare and the server's CPU per request; writes the whole result to bench/results/<time>.json.
 *
 *   node bench/run.ts [--duration 10] [--warmup 3] [--connections 50] [--sessions 1000]
 *                     [--only bare,sqlite,redis] [--check]
 *
 * Each option may also come from the environment: BENCH_DURATION, BENCH_WARMUP, BENCH_CONNECTIONS,
 * BENCH_SESSIONS. --check exits 1 when a ratio misses its target. See bench/README.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuBetween, sampleCpu } from './cpu.ts';
import { generateLoad } from './load.ts';
import { startTarget, TARGET_NAMES, type TargetKey } from './targets.ts';
import { formatTable, type ScenarioResult } from './report.ts';

/** The issue's targets: throughput as a share of bare Fastify's, measured in the same run. */
export const TARGET_RATIOS: Partial<Record<TargetKey, number>> = { sqlite: 0.7, redis: 0.6 };

const { values } = parseArgs({
  options: {
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    sessions: { type: 'string' },
    only: { type: 'string' },
    check: { type: 'boolean' },
  },
});

function positive(name: string, value: string | undefined, env: string | undefined, fallback: number): number {
  const parsed = Number(value ?? env ?? fallback);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`--${name} must be a positive number, not ${value ?? env}`);
  return parsed;
}

const settings = {
  durationSeconds: positive('duration', values.duration, process.env.BENCH_DURATION, 10),
  warmupSeconds: positive('warmup', values.warmup, process.env.BENCH_WARMUP, 3),
  connections: Math.round(positive('connections', values.connections, process.env.BENCH_CONNECTIONS, 50)),
  sessions: Math.round(positive('sessions', values.sessions, process.env.BENCH_SESSIONS, 1000)),
};
const keys = (values.only ?? 'bare,sqlite,redis').split(',').map((k) => k.trim()) as TargetKey[];
for (const key of keys) if (!(key in TARGET_NAMES)) throw new Error(`--only: unknown target ${key}; use bare, sqlite, redis`);
// Ratios need the baseline: it runs first whenever anything else runs.
if (!keys.includes('bare')) keys.unshift('bare');

async function measure(key: TargetKey): Promise<Omit<ScenarioResult, 'ratio' | 'cpuRatio' | 'target'>> {
  process.stdout.write(`${TARGET_NAMES[key]}: starting${key === 'bare' ? '' : `, creating ${settings.sessions} sessions`}…\n`);
  const target = await startTarget(key, settings.sessions);
  try {
    const load = { url: target.url, path: target.path, tokens: target.tokens, connections: settings.connections };
    await generateLoad({ ...load, durationSeconds: settings.warmupSeconds });
    const before = sampleCpu(target.serverPid, target.redisPid);
    const result = await generateLoad({ ...load, durationSeconds: settings.durationSeconds });
    const cpu = cpuBetween(before, sampleCpu(target.serverPid, target.redisPid));
    if (result.non2xx > 0 || result.errors > 0 || result.ok === 0) {
      throw new Error(`${TARGET_NAMES[key]}: ${result.non2xx} non-2xx answers (${JSON.stringify(result.statusCodes)}), ` +
        `${result.errors} errors — not a valid measurement`);
    }
    const serverCpuMicrosPerRequest = cpu.serverSeconds === null ? null : (cpu.serverSeconds * 1e6) / result.ok;
    return { key, name: TARGET_NAMES[key], load: result, cpu, serverCpuMicrosPerRequest };
  } finally {
    await target.stop();
  }
}

const started = new Date();
const measured: Omit<ScenarioResult, 'ratio' | 'cpuRatio' | 'target'>[] = [];
for (const key of keys) measured.push(await measure(key));

const bare = measured.find((m) => m.key === 'bare');
const results: ScenarioResult[] = measured.map((m) => ({
  ...m,
  ratio: bare === undefined ? null : m.load.requestsPerSecond / bare.load.requestsPerSecond,
  cpuRatio: bare?.serverCpuMicrosPerRequest == null || m.serverCpuMicrosPerRequest === null
    ? null
    : bare.serverCpuMicrosPerRequest / m.serverCpuMicrosPerRequest,
  target: TARGET_RATIOS[m.key] ?? null,
}));

const machine = {
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? 'unknown',
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
};
process.stdout.write(`\n${formatTable(results, settings, machine, started)}\n`);

const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(resultsDir, { recursive: true });
const file = join(resultsDir, `${started.toISOString().replaceAll(':', '-').replace(/\.\d+Z$/, 'Z')}.json`);
writeFileSync(file, `${JSON.stringify({ date: started.toISOString(), machine, loadGenerator: 'autocannon 9.0.0 (in the runner process)', settings, results }, null, 2)}\n`);
process.stdout.write(`\nwritten: ${file}\n`);

const missed = results.filter((r) => r.target !== null && r.ratio !== null && r.ratio < r.target);
if (values.check === true && missed.length > 0) process.exit(1);
