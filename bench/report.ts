/** The benchmark's table: one line per target, and the warnings that make a run untrustworthy. */
import type { CpuUse } from './cpu.ts';
import type { LoadResult } from './load.ts';
import type { TargetKey } from './targets.ts';
import type { BetterAuthKey } from './better-auth.ts';

/** latchkey req/s ÷ better-auth's get-session req/s on the same store, measured in the same run. */
export interface PeerRatios {
  readonly betterAuth: number | null;
  readonly betterAuthCookieCache: number | null;
  /** Both must reach it. */
  readonly target: number;
}

export interface ScenarioResult {
  readonly key: TargetKey | BetterAuthKey;
  readonly name: string;
  readonly load: LoadResult;
  readonly cpu: CpuUse;
  /** Server CPU per answered request, in µs. */
  readonly serverCpuMicrosPerRequest: number | null;
  /** Highest resident memory of the server during the measured period, MiB. */
  readonly serverPeakRssMiB: number | null;
  /** req/s ÷ bare's req/s. */
  readonly ratio: number | null;
  /** bare's CPU µs/request ÷ this one's: the ratio if both were CPU-bound on one core. */
  readonly cpuRatio: number | null;
  readonly target: number | null;
  /** latchkey rows on a store better-auth ran on too; null elsewhere. */
  readonly peer: PeerRatios | null;
}

interface Settings {
  readonly durationSeconds: number;
  readonly warmupSeconds: number;
  readonly connections: number;
  readonly sessions: number;
}

interface Machine {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly node: string;
}

/** A server that did not get most of a core was not what limited the run (bench/README.md, "Reading the tables"). */
const SATURATED_CORES = 0.9;
/** Other processes using this much CPU make the run's figures suspect. */
const NOISY_OTHER_CORES = 0.2;

const fixed = (value: number | null, digits: number) => (value === null ? '–' : value.toFixed(digits));

export function formatTable(results: readonly ScenarioResult[], settings: Settings, machine: Machine, started: Date): string {
  const peers = results.some((r) => r.key.startsWith('better-auth'));
  const header = ['config', 'req/s', 'p50 ms', 'p99 ms', 'ratio', 'target', ...(peers ? ['÷ better-auth', 'peer target'] : []), 'server µs/req', 'cpu ratio', 'peak RSS MiB', 'server cores', 'redis cores', 'loadgen cores', 'other cores'];
  const rows = results.map((r) => [
    r.name,
    r.load.requestsPerSecond.toFixed(0),
    r.load.p50Ms.toFixed(1),
    r.load.p99Ms.toFixed(1),
    fixed(r.ratio, 2),
    r.target === null ? '' : `≥ ${r.target.toFixed(2)} ${r.ratio !== null && r.ratio >= r.target ? 'met' : 'MISSED'}`,
    ...(peers ? peerCells(r.peer) : []),
    fixed(r.serverCpuMicrosPerRequest, 1),
    fixed(r.cpuRatio, 2),
    fixed(r.serverPeakRssMiB, 0),
    fixed(r.cpu.serverCores, 2),
    fixed(r.cpu.redisCores, 2),
    r.cpu.loadgenCores.toFixed(2),
    fixed(r.cpu.otherCores, 2),
  ]);
  const warnings = results.flatMap((r) => [
    ...(r.cpu.serverCores !== null && r.cpu.serverCores < SATURATED_CORES
      ? [`${r.name}: the server used only ${r.cpu.serverCores.toFixed(2)} core — the load generator or the box limited this run`]
      : []),
    ...(r.cpu.otherCores !== null && r.cpu.otherCores > NOISY_OTHER_CORES
      ? [`${r.name}: other processes used ${r.cpu.otherCores.toFixed(2)} core during the run — figures are suspect`]
      : []),
  ]);
  return [
    `token validation, ${started.toISOString()} — ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}`,
    `${settings.connections} connections, ${settings.warmupSeconds} s warm-up, ${settings.durationSeconds} s measured, ` +
      `${settings.sessions} sessions rotated; latchkey: GET /v1/user/current, bare: GET /` +
      (peers ? ', better-auth: GET /api/auth/get-session' : ''),
    '',
    formatRows(header, rows),
    ...(peers ? ['', '÷ better-auth: latchkey req/s ÷ better-auth req/s on the same store, without | with its cookie cache'] : []),
    ...(warnings.length > 0 ? ['', ...warnings.map((w) => `warning: ${w}`)] : []),
  ].join('\n');
}

function peerCells(peer: PeerRatios | null): string[] {
  if (peer === null) return ['', ''];
  const { betterAuth, betterAuthCookieCache, target } = peer;
  const met = betterAuth !== null && betterAuthCookieCache !== null && Math.min(betterAuth, betterAuthCookieCache) >= target;
  return [`${fixed(betterAuth, 1)} | ${fixed(betterAuthCookieCache, 1)}`, `≥ ${target} ${met ? 'met' : 'MISSED'}`];
}

/** A plain text table: first column left-aligned, the others right-aligned. */
export function formatRows(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export { fixed };

/** Warnings about a measurement that make its figures suspect (see formatTable). */
export function noiseWarnings(name: string, cpu: CpuUse): string[] {
  return [
    ...(cpu.otherCores !== null && cpu.otherCores > NOISY_OTHER_CORES
      ? [`${name}: other processes used ${cpu.otherCores.toFixed(2)} core during the run — figures are suspect`]
      : []),
  ];
}
