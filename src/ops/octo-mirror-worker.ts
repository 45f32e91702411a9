import type { OctoMirror } from '../core/sessions/octo-mirror.ts';
import { runPeriodically, type PeriodicLogger, type PeriodicTask } from './periodic.ts';

/**
 * Every node retries the removals octo-server's Redis missed (docs/octo-compat.md §3) until they
 * land; a removal is idempotent, so two nodes working one job at once do no harm.
 */
export function startOctoMirrorWorker(mirror: OctoMirror, intervalMs: number, log: PeriodicLogger): PeriodicTask {
  return runPeriodically('octo-mirror-retry', intervalMs, async () => {
    const report = await mirror.drain();
    if (report.failed > 0) log.warn({ owed: report.failed }, 'octo token mirror: removals still owed; octo-server may accept these tokens until they land');
  }, log);
}
