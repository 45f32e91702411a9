/**
 * qr: QR login round trips per second, each as a browser and a signed-in app really do it:
 * the browser creates the request (with its QR SVG) and long-polls; the app scans (the poll wakes
 * with `scanned`), the browser polls again and the app approves (the poll wakes with `authed` and
 * the auth code); the browser exchanges the code for a session. Six requests per round trip.
 *
 * A multi-step flow is no job for autocannon: `--connections`/4 workers (at least 4) loop round
 * trips with fetch (keep-alive). Every step must answer what the protocol says, or the run stops.
 * Baseline: validation req/s on the same node and store.
 */
import { measure, measureLoad, type Measured } from '../measure.ts';
import type { LoadResult } from '../load.ts';
import { fixed, formatRows, noiseWarnings } from '../report.ts';
import { openStore, seedSessions } from '../seed.ts';
import { CHEAP_PASSWORDS, checkTokens, registerUser, startBenchServer, type StoreKind } from '../server.ts';
import type { Progress, Scenario, Settings } from './scenario.ts';

const REQUESTS_PER_ROUND_TRIP = 6;
const APP = 0;
const BROWSER = { flag: '1', device_id: 'bench-browser', device_name: 'bench browser', device_model: 'autocannon' };

interface StoreResult {
  readonly store: StoreKind;
  readonly validate: Measured;
  readonly qr: Measured;
  readonly workers: number;
}

type Json = Record<string, unknown>;

async function call(url: string, method: 'GET' | 'POST', path: string, expected: number, body?: Json, token?: string): Promise<Json> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token !== undefined) headers.token = token;
  const response = await fetch(url + path, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const answer = (await response.json()) as Json;
  if (response.status !== expected) throw new Error(`${method} ${path.split('?')[0]} answered ${response.status}, not ${expected}: ${JSON.stringify(answer)}`);
  return answer;
}

function field(answer: Json, name: string): string {
  const value = answer[name];
  if (typeof value !== 'string') throw new Error(`answer without ${name}: ${JSON.stringify(answer)}`);
  return value;
}

/** One whole QR login; resolves with its wall time in ms. */
async function roundTrip(url: string, appToken: string): Promise<number> {
  const started = performance.now();
  const created = await call(url, 'GET', `/v1/user/loginuuid?${new URLSearchParams(BROWSER)}`, 200);
  const uuid = field(created, 'uuid');
  const pollSecret = field(created, 'poll_secret');
  const poll = async (last: string) => {
    const answer = await call(url, 'GET', `/v1/user/loginstatus?${new URLSearchParams({ uuid, poll_secret: pollSecret, last_status: last })}`, 200);
    return answer;
  };
  const scanned = poll('waitScan');
  await call(url, 'POST', `/v1/user/qrcode/${uuid}/scan`, 200, undefined, appToken);
  if ((await scanned).status !== 'scanned') throw new Error('the poll did not wake with scanned');
  const authed = poll('scanned');
  await call(url, 'POST', '/v1/user/grant_login', 200, { uuid, approve: true }, appToken);
  const answer = await authed;
  if (answer.status !== 'authed') throw new Error(`the poll woke with ${JSON.stringify(answer)}, not authed`);
  const session = await call(url, 'POST', `/v1/user/login_authcode/${field(answer, 'auth_code')}`, 200, { uuid, poll_secret: pollSecret });
  field(session, 'token');
  return performance.now() - started;
}

const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;

async function roundTrips(url: string, appToken: string, workers: number, seconds: number): Promise<LoadResult> {
  const latencies: number[] = [];
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  const worker = async () => {
    while (performance.now() < until) latencies.push(await roundTrip(url, appToken));
  };
  await Promise.all(Array.from({ length: workers }, worker));
  const duration = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    requestsPerSecond: latencies.length / duration, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99),
    ok: latencies.length, non2xx: 0, errors: 0, timeouts: 0, statusCodes: {}, durationSeconds: duration,
  };
}

async function runOnStore(store: StoreKind, settings: Settings, progress: Progress): Promise<StoreResult> {
  progress(`qr, ${store}: starting…`);
  const server = await startBenchServer(store, { password: CHEAP_PASSWORDS });
  try {
    const app = await registerUser(server.url, 'qr-app', APP);
    const validator = await registerUser(server.url, 'validator');
    const kv = await openStore(server.storeUrl);
    const { tokens } = await seedSessions(kv, [validator.uid], settings.sessions, settings.sessions).finally(() => kv.close());
    await checkTokens(server.url, tokens, 200);
    const processes = { serverPid: server.pid, redisPids: server.redisPids };
    const validate = await measureLoad(`qr/${store}: validation`, processes, {
      url: server.url, path: '/v1/user/current', tokens, connections: settings.connections, durationSeconds: settings.durationSeconds,
    }, settings.warmupSeconds);
    const workers = Math.max(4, Math.round(settings.connections / 4));
    progress(`qr, ${store}: ${workers} workers looping round trips…`);
    await roundTrips(server.url, app.token, workers, Math.min(2, settings.warmupSeconds));
    const qr = await measure(`qr/${store}`, processes, () => roundTrips(server.url, app.token, workers, settings.durationSeconds));
    return { store, validate, qr, workers };
  } finally {
    await server.stop();
  }
}

export const qrScenario: Scenario = async (settings, progress) => {
  const results: StoreResult[] = [];
  for (const store of settings.stores) results.push(await runOnStore(store, settings, progress));
  const rows = results.flatMap((r) => [
    [`${r.store} validate (baseline)`, r.validate.load.requestsPerSecond.toFixed(0), '', r.validate.load.p50Ms.toFixed(1),
      r.validate.load.p99Ms.toFixed(1), '', fixed(r.validate.serverPeakRssMiB, 0)],
    [`${r.store} qr round trips`, r.qr.load.requestsPerSecond.toFixed(1), (r.qr.load.requestsPerSecond * REQUESTS_PER_ROUND_TRIP).toFixed(0),
      r.qr.load.p50Ms.toFixed(1), r.qr.load.p99Ms.toFixed(1),
      ((r.qr.load.requestsPerSecond * REQUESTS_PER_ROUND_TRIP) / r.validate.load.requestsPerSecond).toFixed(3),
      fixed(r.qr.serverPeakRssMiB, 0)],
  ]);
  const warnings = results.flatMap((r) => [...noiseWarnings(`${r.store} validate`, r.validate.cpu), ...noiseWarnings(`${r.store} qr`, r.qr.cpu)]);
  const text = [
    `QR login round trips (create + long-poll, scan, poll, grant, exchange: ${REQUESTS_PER_ROUND_TRIP} requests), ` +
      `${results[0]?.workers ?? '?'} concurrent browsers, ${settings.durationSeconds} s; latency is per whole round trip`,
    '',
    formatRows(['phase', 'per s', 'requests/s', 'p50 ms', 'p99 ms', 'requests ratio to validate', 'peak RSS MiB'], rows),
    ...(warnings.length > 0 ? ['', ...warnings.map((w) => `warning: ${w}`)] : []),
  ].join('\n');
  return { text, data: results, missed: [] };
};
