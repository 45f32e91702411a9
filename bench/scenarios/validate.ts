/**
 * validate: `GET /v1/user/current` with a valid token on latchkey's SQLite and Redis stores,
 * against a bare Fastify route (the framework limit), in the same run.
 */
import { cpus } from 'node:os';
import { measureLoad } from '../measure.ts';
import { formatTable, type ScenarioResult } from '../report.ts';
import { startTarget, TARGET_NAMES, type TargetKey } from '../targets.ts';
import type { Scenario } from './scenario.ts';

/** The issue's targets: throughput as a share of bare Fastify's, measured in the same run. */
export const TARGET_RATIOS: Partial<Record<TargetKey, number>> = { sqlite: 0.7, redis: 0.6 };
/** p99 of validation at 50 connections, in ms. */
export const TARGET_P99_MS = 5;

export const validateScenario: Scenario = async (settings, progress) => {
  // Ratios need the baseline: it runs first.
  const keys: TargetKey[] = ['bare', ...settings.stores];
  const measured: Omit<ScenarioResult, 'ratio' | 'cpuRatio' | 'target'>[] = [];
  for (const key of keys) {
    progress(`${TARGET_NAMES[key]}: starting${key === 'bare' ? '' : `, creating ${settings.sessions} sessions`}…`);
    const target = await startTarget(key, settings.sessions);
    try {
      const load = { url: target.url, path: target.path, tokens: target.tokens, connections: settings.connections, durationSeconds: settings.durationSeconds };
      const result = await measureLoad(TARGET_NAMES[key], { serverPid: target.serverPid, redisPid: target.redisPid }, load, settings.warmupSeconds);
      measured.push({ key, name: TARGET_NAMES[key], ...result });
    } finally {
      await target.stop();
    }
  }
  const bare = measured.find((m) => m.key === 'bare');
  const results: ScenarioResult[] = measured.map((m) => ({
    ...m,
    ratio: bare === undefined ? null : m.load.requestsPerSecond / bare.load.requestsPerSecond,
    cpuRatio: bare?.serverCpuMicrosPerRequest == null || m.serverCpuMicrosPerRequest === null
      ? null
      : bare.serverCpuMicrosPerRequest / m.serverCpuMicrosPerRequest,
    target: TARGET_RATIOS[m.key] ?? null,
  }));
  const missed = results.flatMap((r) => [
    ...(r.target !== null && r.ratio !== null && r.ratio < r.target ? [`validate ${r.name}: ratio ${r.ratio.toFixed(2)} < ${r.target}`] : []),
    ...(r.key !== 'bare' && settings.connections === 50 && r.load.p99Ms >= TARGET_P99_MS
      ? [`validate ${r.name}: p99 ${r.load.p99Ms} ms ≥ ${TARGET_P99_MS} ms`] : []),
  ]);
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version };
  return { text: formatTable(results, settings, machine, new Date()), data: results, missed };
};
