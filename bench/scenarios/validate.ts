/**
 * validate: `GET /v1/user/current` with a valid token on latchkey's SQLite and Redis stores,
 * against a bare Fastify route (the framework limit), and against better-auth's get-session on
 * the same stores, with and without its cookie cache, in the same run.
 */
import { cpus } from 'node:os';
import { measureLoad } from '../measure.ts';
import { fixed, formatRows, formatTable, type PeerRatios, type ScenarioResult } from '../report.ts';
import { startTarget, TARGET_NAMES, type TargetKey } from '../targets.ts';
import { betterAuthKey, betterAuthName, startBetterAuth, type BetterAuthStore, type BetterAuthVariant } from '../better-auth.ts';
import type { Scenario } from './scenario.ts';

/** The issue's targets: throughput as a share of bare Fastify's, measured in the same run. */
export const TARGET_RATIOS: Partial<Record<TargetKey, number>> = { sqlite: 0.7, redis: 0.6 };
/** p99 of validation at 50 connections, in ms. */
export const TARGET_P99_MS = 5;
/** latchkey's req/s as a multiple of better-auth's get-session on the same store. */
export const TARGET_PEER_RATIO = 8;
const PEER_STORES: readonly BetterAuthStore[] = ['sqlite', 'redis'];

type Measurement = Omit<ScenarioResult, 'ratio' | 'cpuRatio' | 'target' | 'peer'>;
/** The same target at another connection count (`--sweep`). */
type SweepPoint = Measurement & { readonly connections: number };

export const validateScenario: Scenario = async (settings, progress) => {
  // Ratios need the baseline: it runs first.
  const keys: TargetKey[] = ['bare', ...settings.stores, ...(settings.validateOnCluster && !settings.stores.includes('cluster') ? ['cluster' as const] : [])];
  const measured: Measurement[] = [];
  const sweep: SweepPoint[] = [];
  for (const key of keys) {
    progress(`${TARGET_NAMES[key]}: starting${key === 'bare' ? '' : `, creating ${settings.sessions} sessions`}…`);
    const target = await startTarget(key, settings.sessions);
    try {
      const load = { url: target.url, path: target.path, tokens: target.tokens, connections: settings.connections, durationSeconds: settings.durationSeconds };
      const result = await measureLoad(TARGET_NAMES[key], target, load, settings.warmupSeconds);
      measured.push({ key, name: TARGET_NAMES[key], ...result });
      for (const connections of settings.sweepConnections) {
        progress(`${TARGET_NAMES[key]}: ${connections} connections…`);
        const point = await measureLoad(`${TARGET_NAMES[key]} at ${connections} connections`, target, { ...load, connections }, 1);
        sweep.push({ key, name: TARGET_NAMES[key], connections, ...point });
      }
    } finally {
      await target.stop();
    }
  }
  // After latchkey's runs, better-auth on the same stores: without, then with its cookie cache.
  for (const store of PEER_STORES.filter((s) => settings.peers && settings.stores.includes(s))) {
    for (const cookieCache of [false, true]) measured.push(await measureBetterAuth({ store, cookieCache }, settings, progress));
  }
  const bare = measured.find((m) => m.key === 'bare');
  const results: ScenarioResult[] = measured.map((m) => ({
    ...m,
    ratio: bare === undefined ? null : m.load.requestsPerSecond / bare.load.requestsPerSecond,
    cpuRatio: bare?.serverCpuMicrosPerRequest == null || m.serverCpuMicrosPerRequest === null
      ? null
      : bare.serverCpuMicrosPerRequest / m.serverCpuMicrosPerRequest,
    target: m.key in TARGET_RATIOS ? TARGET_RATIOS[m.key as TargetKey] ?? null : null,
    peer: peerRatios(m, measured),
  }));
  const missed = results.flatMap((r) => [
    ...(r.target !== null && r.ratio !== null && r.ratio < r.target ? [`validate ${r.name}: ratio ${r.ratio.toFixed(2)} < ${r.target}`] : []),
    ...(r.peer === null ? [] : ([['', r.peer.betterAuth], [' + cookie cache', r.peer.betterAuthCookieCache]] as const)
      .filter(([, ratio]) => ratio === null || ratio < TARGET_PEER_RATIO)
      .map(([variant, ratio]) => `validate ${r.name}: ${fixed(ratio, 1)}× better-auth${variant} < ${TARGET_PEER_RATIO}×`)),
    ...(isLatchkey(r.key) && settings.connections === 50 && r.load.p99Ms >= TARGET_P99_MS
      ? [`validate ${r.name}: p99 ${r.load.p99Ms} ms ≥ ${TARGET_P99_MS} ms`] : []),
  ]);
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version };
  const text = formatTable(results, settings, machine, new Date()) + (sweep.length === 0 ? '' : `\n\n${formatSweep(sweep)}`);
  return { text, data: { results, sweep }, missed };
};

/** latchkey on SQLite or Redis ÷ better-auth on the same store, when better-auth ran on it. */
function peerRatios(m: Measurement, measured: readonly Measurement[]): PeerRatios | null {
  if (m.key !== 'sqlite' && m.key !== 'redis') return null;
  const over = (key: Measurement['key']) => {
    const peer = measured.find((p) => p.key === key);
    return peer === undefined ? null : m.load.requestsPerSecond / peer.load.requestsPerSecond;
  };
  const betterAuth = over(`better-auth-${m.key}`);
  const betterAuthCookieCache = over(`better-auth-${m.key}-cookie-cache`);
  if (betterAuth === null && betterAuthCookieCache === null) return null;
  return { betterAuth, betterAuthCookieCache, target: TARGET_PEER_RATIO };
}

function isLatchkey(key: Measurement['key']): boolean {
  return key !== 'bare' && !key.startsWith('better-auth');
}

/** One better-auth variant: its cookie pool checked before and after, every body checked during the load. */
async function measureBetterAuth(
  variant: BetterAuthVariant,
  settings: Parameters<Scenario>[0],
  progress: Parameters<Scenario>[1],
): Promise<Measurement> {
  const name = betterAuthName(variant);
  progress(`${name}: starting, creating ${settings.sessions} sessions…`);
  const target = await startBetterAuth(variant, settings.sessions);
  try {
    const load = {
      url: target.url, path: target.path, tokens: [], cookies: target.cookies, verifyBody: target.verifyBody,
      connections: settings.connections, durationSeconds: settings.durationSeconds,
    };
    const result = await measureLoad(name, target, load, settings.warmupSeconds, target.checkCookies);
    return { key: betterAuthKey(variant), name, ...result };
  } finally {
    await target.stop();
  }
}

/** req/s and latency at the other connection counts; ratio to bare at the same count. */
function formatSweep(sweep: readonly SweepPoint[]): string {
  const rows = sweep.map((point) => {
    const bare = sweep.find((p) => p.key === 'bare' && p.connections === point.connections);
    return [
      point.name, String(point.connections), point.load.requestsPerSecond.toFixed(0), point.load.p50Ms.toFixed(1), point.load.p99Ms.toFixed(1),
      bare === undefined ? '–' : (point.load.requestsPerSecond / bare.load.requestsPerSecond).toFixed(2), fixed(point.serverCpuMicrosPerRequest, 1),
    ];
  });
  return ['other connection counts (1 s warm-up each):', '', formatRows(['config', 'connections', 'req/s', 'p50 ms', 'p99 ms', 'ratio', 'server µs/req'], rows)].join('\n');
}
