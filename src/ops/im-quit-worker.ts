import type { SessionService } from '../core/sessions/service.ts';
import type { Metrics } from './metrics.ts';
import { runPeriodically, type PeriodicLogger, type PeriodicTask } from './periodic.ts';

export interface ImQuitWorkerLogger extends PeriodicLogger {
  error(object: Record<string, unknown>, message: string): void;
}

/**
 * Every node drains the retry queue of device_quit calls the IM server missed (DESIGN §3.4); jobs
 * are claimed one by one in the Kv store, so nodes never work the same job at once.
 */
export function startImQuitWorker(sessions: SessionService, metrics: Metrics, intervalMs: number, log: ImQuitWorkerLogger): PeriodicTask {
  return runPeriodically('im-quit-retry', intervalMs, async () => {
    const report = await sessions.drainOwedImQuits();
    if (report === null) return;
    metrics.imQuitRetries.inc({ result: 'delivered' }, report.delivered);
    metrics.imQuitRetries.inc({ result: 'failed' }, report.failed);
    metrics.imQuitRetries.inc({ result: 'gave_up' }, report.gaveUp);
    // A given-up quit may leave a logged-out device connected to the IM server: an operator must know.
    if (report.gaveUp > 0) log.error({ gaveUp: report.gaveUp }, 'device_quit given up after the configured attempts');
    metrics.imQuitPending.set(await sessions.owedImQuits());
  }, log);
}
