/**
 * validate: `GET /v1/user/current` with a valid token on latchkey's SQLite, Redis (and Redis
 * Cluster) stores, against its floor — a Fastify route doing one read of the session on the same
 * kind of store + JSON.parse (bench/floor-server.ts), the limit of a design that reads the store
 * on every request — against a bare Fastify route (the framework limit), and against better-auth's
 * get-session on the same stores, with and without its cookie cache, in the same run. The targets
 * are measured in interleaved rounds; ratios are taken within a round.
 */
import { cpus } from 'node:os';
import { measureLoad, type Measured } from '../measure.ts';
import { fixed, formatRows, noiseWarnings, type PeerRatios, type ScenarioResult } from '../report.ts';
import { startTarget, TARGET_NAMES, type Target, type TargetKey } from '../targets.ts';
import { betterAuthKey, betterAuthName, startBetterAuth, type BetterAuthStore, type BetterAuthVariant } from '../better-auth.ts';
import type { Scenario, Settings } from './scenario.ts';

/**
 * The targets, each a ratio within one run (medians over the rounds): latchkey's req/s as a share
 * of its floor's (the same route shape doing only the one store read every validation needs),
 * its p99 as a multiple of the floor's, and the Cluster's req/s as a share of single Redis's.
 */
export const TARGET_FLOOR_RATIO: Partial<Record<TargetKey, number>> = { sqlite: 0.9, redis: 0.9 };
export const TARGET_FLOOR_P99: Partial<Record<TargetKey, number>> = { redis: 1.5 };
export const TARGET_CLUSTER_OF_REDIS = 0.85;
/** latchkey's req/s as a multiple of better-auth's get-session on the same store. */
export const TARGET_PEER_RATIO = 8;
const PEER_STORES: readonly BetterAuthStore[] = ['sqlite', 'redis'];
/** Each latchkey store's floor. */
const FLOOR_OF: Partial<Record<TargetKey, TargetKey>> = { sqlite: 'floor-sqlite', redis: 'floor-redis', cluster: 'floor-redis' };

type Measurement = Omit<ScenarioResult, 'ratio' | 'cpuRatio' | 'target' | 'peer'>;
/** The same target at another connection count (`--sweep`). */
type SweepPoint = Measurement & { readonly connections: number };
/** One target in one round. */
interface RoundPoint extends Measured { readonly key: TargetKey; readonly round: number }

/** A ratio's median over the rounds and its spread. */
export interface Spread { readonly median: number; readonly min: number; readonly max: number }

export interface ValidateRow {
  readonly key: TargetKey;
  readonly name: string;
  readonly rounds: readonly RoundPoint[];
  /** Medians over the rounds. */
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly serverCpuMicrosPerRequest: number | null;
  readonly ofBare: Spread | null;
  readonly ofFloor: Spread | null;
  /** p99 ÷ the floor's p99, per round. */
  readonly p99OfFloor: Spread | null;
  /** Cluster only: req/s ÷ single Redis's, per round. */
  readonly ofRedis: Spread | null;
  /** Cluster: single Redis's server µs/req ÷ the Cluster's, per round — the req/s ratio if each node had its cores to itself. */
  readonly ofRedisCpu: Spread | null;
  readonly peer: PeerRatios | null;
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] ?? NaN : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
};
const spread = (values: readonly number[]): Spread | null =>
  values.length === 0 ? null : { median: median(values), min: Math.min(...values), max: Math.max(...values) };

function targetKeys(settings: Settings): TargetKey[] {
  const stores = [...settings.stores, ...(settings.validateOnCluster && !settings.stores.includes('cluster') ? ['cluster' as const] : [])];
  const floors = [...new Set(stores.map((store) => FLOOR_OF[store]).filter((key) => key !== undefined))];
  return ['bare', ...floors, ...stores];
}

export const validateScenario: Scenario = async (settings, progress) => {
  const keys = targetKeys(settings);
  const targets = new Map<TargetKey, Target>();
  const points: RoundPoint[] = [];
  const sweep: SweepPoint[] = [];
  try {
    // Every server starts first and stays up: the rounds interleave them, so a drift of the
    // machine's speed (other work, the host) falls on every row of a round alike.
    for (const key of keys) {
      progress(`${TARGET_NAMES[key]}: starting${key === 'bare' ? '' : `, ${settings.sessions} sessions`}…`);
      targets.set(key, await startTarget(key, settings.sessions));
    }
    for (let round = 0; round < settings.rounds; round += 1) {
      // Each round starts one further down the list, so no row is always first after a pause.
      const order = keys.map((_, i) => keys[(i + round) % keys.length] as TargetKey);
      progress(`round ${round + 1} of ${settings.rounds}: ${order.map((key) => TARGET_NAMES[key]).join(', ')}…`);
      for (const key of order) {
        const target = targets.get(key) as Target;
        const load = { url: target.url, path: target.path, tokens: target.tokens, connections: settings.connections, durationSeconds: settings.durationSeconds };
        // The first round warms each server up fully (JIT, pools, last-seen writes); later ones briefly.
        const warmup = round === 0 ? settings.warmupSeconds : Math.min(1, settings.warmupSeconds);
        points.push({ key, round, ...(await measureLoad(`${TARGET_NAMES[key]} (round ${round + 1})`, target, load, warmup)) });
      }
    }
    for (const connections of settings.sweepConnections) {
      for (const key of keys) {
        const target = targets.get(key) as Target;
        progress(`${TARGET_NAMES[key]}: ${connections} connections…`);
        const load = { url: target.url, path: target.path, tokens: target.tokens, connections, durationSeconds: settings.durationSeconds };
        const point = await measureLoad(`${TARGET_NAMES[key]} at ${connections} connections`, target, load, 1);
        sweep.push({ key, name: TARGET_NAMES[key], connections, ...point });
      }
    }
  } finally {
    for (const target of targets.values()) await target.stop();
  }
  const rows = keys.map((key) => summarize(key, points));
  // After latchkey's runs, better-auth on the same stores: without, then with its cookie cache.
  const peers: Measurement[] = [];
  for (const store of PEER_STORES.filter((s) => settings.peers && settings.stores.includes(s))) {
    for (const cookieCache of [false, true]) peers.push(await measureBetterAuth({ store, cookieCache }, settings, progress));
  }
  const withPeers = rows.map((row) => ({ ...row, peer: peerRatios(row, peers) }));
  const missed = withPeers.flatMap((row) => missedTargets(row));
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version };
  const text = formatValidate(withPeers, peers, points, settings, machine) + (sweep.length === 0 ? '' : `\n\n${formatSweep(sweep)}`);
  return { text, data: { rows: withPeers, peers, sweep }, missed };
};

function summarize(key: TargetKey, points: readonly RoundPoint[]): ValidateRow {
  const mine = points.filter((p) => p.key === key);
  const per = (other: TargetKey | undefined, f: (p: RoundPoint, o: RoundPoint) => number): Spread | null => {
    if (other === undefined || other === key) return null;
    return spread(mine.flatMap((p) => {
      const o = points.find((q) => q.key === other && q.round === p.round);
      return o === undefined ? [] : [f(p, o)];
    }));
  };
  const rps = (p: RoundPoint, o: RoundPoint) => p.load.requestsPerSecond / o.load.requestsPerSecond;
  const cpu = mine.map((p) => p.serverCpuMicrosPerRequest).filter((v) => v !== null);
  const floor = FLOOR_OF[key];
  return {
    key,
    name: TARGET_NAMES[key],
    rounds: mine,
    requestsPerSecond: median(mine.map((p) => p.load.requestsPerSecond)),
    p50Ms: median(mine.map((p) => p.load.p50Ms)),
    p99Ms: median(mine.map((p) => p.load.p99Ms)),
    serverCpuMicrosPerRequest: cpu.length === 0 ? null : median(cpu),
    ofBare: per('bare', rps),
    ofFloor: per(floor, rps),
    // autocannon rounds to 1 ms: a floor p99 of 0 counts as 1.
    p99OfFloor: per(floor, (p, o) => p.load.p99Ms / Math.max(1, o.load.p99Ms)),
    ofRedis: key === 'cluster' ? per('redis', rps) : null,
    ofRedisCpu: key === 'cluster'
      ? per('redis', (p, o) => (p.serverCpuMicrosPerRequest === null || o.serverCpuMicrosPerRequest === null ? Number.NaN : o.serverCpuMicrosPerRequest / p.serverCpuMicrosPerRequest))
      : null,
    peer: null,
  };
}

function missedTargets(row: ValidateRow): string[] {
  const missed: string[] = [];
  const floorTarget = TARGET_FLOOR_RATIO[row.key];
  if (floorTarget !== undefined && row.ofFloor !== null && row.ofFloor.median < floorTarget) {
    missed.push(`validate ${row.name}: ${row.ofFloor.median.toFixed(2)} × its floor's req/s < ${floorTarget}`);
  }
  const p99Target = TARGET_FLOOR_P99[row.key];
  if (p99Target !== undefined && row.p99OfFloor !== null && row.p99OfFloor.median > p99Target) {
    missed.push(`validate ${row.name}: p99 ${row.p99OfFloor.median.toFixed(2)} × its floor's p99 > ${p99Target}`);
  }
  if (row.ofRedis !== null && row.ofRedis.median < TARGET_CLUSTER_OF_REDIS) {
    missed.push(`validate ${row.name}: ${row.ofRedis.median.toFixed(2)} × latchkey redis's req/s < ${TARGET_CLUSTER_OF_REDIS}`);
  }
  if (row.peer !== null) {
    for (const [variant, ratio] of [['', row.peer.betterAuth], [' + cookie cache', row.peer.betterAuthCookieCache]] as const) {
      if (ratio === null || ratio < TARGET_PEER_RATIO) missed.push(`validate ${row.name}: ${fixed(ratio, 1)}× better-auth${variant} < ${TARGET_PEER_RATIO}×`);
    }
  }
  return missed;
}

const spreadText = (s: Spread | null, digits = 2) =>
  s === null ? '' : s.min === s.max ? s.median.toFixed(digits) : `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;

function targetText(row: ValidateRow): string {
  const parts: string[] = [];
  const floor = TARGET_FLOOR_RATIO[row.key];
  if (floor !== undefined && row.ofFloor !== null) parts.push(`÷floor ≥ ${floor} ${row.ofFloor.median >= floor ? 'met' : 'MISSED'}`);
  const p99 = TARGET_FLOOR_P99[row.key];
  if (p99 !== undefined && row.p99OfFloor !== null) parts.push(`p99 ≤ ${p99}× ${row.p99OfFloor.median <= p99 ? 'met' : 'MISSED'}`);
  if (row.ofRedis !== null) parts.push(`÷redis ${spreadText(row.ofRedis)} ≥ ${TARGET_CLUSTER_OF_REDIS} ${row.ofRedis.median >= TARGET_CLUSTER_OF_REDIS ? 'met' : 'MISSED'}`);
  if (row.ofRedisCpu !== null && Number.isFinite(row.ofRedisCpu.median)) parts.push(`(server CPU ÷redis ${spreadText(row.ofRedisCpu)})`);
  return parts.join(', ');
}

function formatValidate(
  rows: readonly ValidateRow[],
  peers: readonly Measurement[],
  points: readonly RoundPoint[],
  settings: Settings,
  machine: { cpus: number; cpuModel: string; node: string },
): string {
  const bare = rows.find((r) => r.key === 'bare');
  const hasPeers = rows.some((r) => r.peer !== null);
  const header = ['config', 'req/s', 'p50 ms', 'p99 ms', '÷ floor', 'p99 ÷ floor', '÷ bare', 'target', ...(hasPeers ? ['÷ better-auth'] : []), 'server µs/req'];
  const lines = rows.map((r) => [
    r.name, r.requestsPerSecond.toFixed(0), r.p50Ms.toFixed(1), r.p99Ms.toFixed(1), spreadText(r.ofFloor), spreadText(r.p99OfFloor),
    spreadText(r.ofBare), targetText(r),
    ...(hasPeers ? [r.peer === null ? '' : `${fixed(r.peer.betterAuth, 1)} | ${fixed(r.peer.betterAuthCookieCache, 1)}`] : []),
    fixed(r.serverCpuMicrosPerRequest, 1),
  ]);
  const peerLines = peers.map((m) => [
    m.name, m.load.requestsPerSecond.toFixed(0), m.load.p50Ms.toFixed(1), m.load.p99Ms.toFixed(1), '', '',
    bare === undefined ? '' : (m.load.requestsPerSecond / bare.requestsPerSecond).toFixed(2), '', ...(hasPeers ? [''] : []),
    fixed(m.serverCpuMicrosPerRequest, 1),
  ]);
  const warnings = [
    ...points.flatMap((p) => noiseWarnings(`${TARGET_NAMES[p.key]} round ${p.round + 1}`, p.cpu)),
    ...peers.flatMap((m) => noiseWarnings(m.name, m.cpu)),
  ];
  return [
    `token validation, ${new Date().toISOString()} — ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}`,
    `${settings.connections} connections, ${settings.rounds} interleaved rounds of ${settings.durationSeconds} s ` +
      `(warm-up ${settings.warmupSeconds} s, then 1 s), ${settings.sessions} sessions rotated; latchkey: GET /v1/user/current, ` +
      'floors: one store read + JSON.parse, bare: GET /',
    'req/s, p50, p99, µs/req: medians over the rounds; ratios: median (min–max) of the per-round ratios',
    '',
    formatRows(header, [...lines, ...peerLines]),
    ...(hasPeers ? ['', '÷ better-auth: latchkey req/s ÷ better-auth req/s on the same store, without | with its cookie cache'] : []),
    ...(warnings.length > 0 ? ['', ...warnings.map((w) => `warning: ${w}`)] : []),
  ].join('\n');
}

/** latchkey on SQLite or Redis ÷ better-auth on the same store, when better-auth ran on it. */
function peerRatios(m: ValidateRow, measured: readonly Measurement[]): PeerRatios | null {
  if (m.key !== 'sqlite' && m.key !== 'redis') return null;
  const over = (key: Measurement['key']) => {
    const peer = measured.find((p) => p.key === key);
    return peer === undefined ? null : m.requestsPerSecond / peer.load.requestsPerSecond;
  };
  const betterAuth = over(`better-auth-${m.key}`);
  const betterAuthCookieCache = over(`better-auth-${m.key}-cookie-cache`);
  if (betterAuth === null && betterAuthCookieCache === null) return null;
  return { betterAuth, betterAuthCookieCache, target: TARGET_PEER_RATIO };
}

/** One better-auth variant: its cookie pool checked before and after, every body checked during the load. */
async function measureBetterAuth(
  variant: BetterAuthVariant,
  settings: Settings,
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
