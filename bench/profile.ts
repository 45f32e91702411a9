/**
 * Profiles the validation path: starts one server under test with `--cpu-prof`, loads it like
 * `npm run bench` does, stops it (a clean exit writes the profile) and prints where its CPU went
 * during the measured period only — setup logins and warm-up are left out.
 *
 *   node bench/profile.ts [sqlite|redis|cluster|bare|floor-redis|floor-sqlite] [--duration 10] [--warmup 3] [--top 40] [--keep]
 *                         [--logins N]   (password logins on N connections during the measured period)
 *
 * Also prints the server's event-loop delay histogram over the measured period (event-loop-delay.ts).
 *
 * Profiling slows the server by ~10–20 %; use it to rank costs, and `npm run bench` to measure them.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatSummary, summarizeProfile } from './cpuprofile.ts';
import { cpuBetween, sampleCpu } from './cpu.ts';
import { generateLoad } from './load.ts';
import { startTarget, TARGET_NAMES, type TargetKey } from './targets.ts';
import { BENCH_DEVICE, BENCH_PASSWORD, registerUser } from './server.ts';

const { values, positionals } = parseArgs({
  options: {
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    sessions: { type: 'string' },
    top: { type: 'string' },
    keep: { type: 'boolean' },
    logins: { type: 'string' },
  },
  allowPositionals: true,
});
const key = (positionals[0] ?? 'sqlite') as TargetKey;
if (!(key in TARGET_NAMES)) throw new Error(`unknown target ${key}; use ${Object.keys(TARGET_NAMES).join(', ')}`);

const dir = mkdtempSync(join(tmpdir(), 'latchkey-prof-'));
const micros = () => Number(process.hrtime.bigint() / 1000n);
const target = await startTarget(key, Number(values.sessions ?? 1000), {
  env: {
    NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${dir} --import ${fileURLToPath(new URL('./event-loop-delay.ts', import.meta.url))}`,
    BENCH_ELD_FILE: join(dir, 'eld.json'),
    BENCH_ELD_START_FILE: join(dir, 'measuring'),
  },
});
let requests = 0;
let window: { from: number; to: number };
try {
  const load = { url: target.url, path: target.path, tokens: target.tokens, connections: Number(values.connections ?? 50) };
  await generateLoad({ ...load, durationSeconds: Number(values.warmup ?? 3) });
  writeFileSync(join(dir, 'measuring'), '');
  const before = sampleCpu(target.serverPid, target.redisPids);
  const from = micros();
  const durationSeconds = Number(values.duration ?? 10);
  // --logins N: password logins (PC sessions of the first bench user) on N connections at the same time.
  const loginConnections = Number(values.logins ?? 0);
  // A user of its own (PC: multi-session, cap 10), as the login scenario does: the validation
  // pool's user holds 1,000 sessions, whose index every login of it would read.
  const loginUser = loginConnections > 0 && key !== 'bare' && !key.startsWith('floor') ? await registerUser(target.url, 'profile-logins', 2) : null;
  const logins = loginUser === null
    ? null
    : generateLoad({
      url: target.url, path: '/v1/user/login', method: 'POST', tokens: [], connections: loginConnections, durationSeconds,
      body: { username: loginUser.username, password: BENCH_PASSWORD, flag: 2, device: BENCH_DEVICE },
    });
  const result = await generateLoad({ ...load, durationSeconds });
  const loginResult = await logins;
  window = { from, to: micros() };
  if (loginResult !== null) process.stdout.write(`logins at the same time: ${loginResult.requestsPerSecond.toFixed(0)}/s (${loginResult.non2xx} non-2xx), p99 ${loginResult.p99Ms} ms\n`);
  const cpu = cpuBetween(before, sampleCpu(target.serverPid, target.redisPids));
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${result.non2xx} non-2xx, ${result.errors} errors`);
  requests = result.ok;
  process.stdout.write(
    `${TARGET_NAMES[key]} (profiled): ${result.requestsPerSecond.toFixed(0)} req/s, p99 ${result.p99Ms} ms, ` +
      `server ${cpu.serverSeconds === null ? '–' : ((cpu.serverSeconds * 1e6) / result.ok).toFixed(1)} µs/req\n\n`,
  );
} finally {
  await target.stop();
}

const eld = join(dir, 'eld.json');
if (existsSync(eld)) {
  const h = JSON.parse(readFileSync(eld, 'utf8')) as Record<string, number>;
  const f = (name: string) => (h[name] ?? NaN).toFixed(1);
  process.stdout.write(`event-loop delay during the measured period (ms): p50 ${f('p50')}, p90 ${f('p90')}, p99 ${f('p99')}, p99.9 ${f('p999')}, max ${f('max')}\n\n`);
}
const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
if (file === undefined) throw new Error(`no .cpuprofile written in ${dir}`);
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Parameters<typeof summarizeProfile>[0];
process.stdout.write(`${formatSummary(summarizeProfile(profile, window), Number(values.top ?? 40), requests)}\n`);
if (values.keep === true) process.stdout.write(`\nprofile kept: ${join(dir, file)}\n`);
else rmSync(dir, { recursive: true, force: true });
