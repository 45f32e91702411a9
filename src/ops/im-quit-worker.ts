import type { SessionService } from '../core/sessions/service.ts';
import type { Metrics } from './metrics.ts';
import { runPeriodically, type PeriodicLogger, type PeriodicTask } from './periodic.ts';

export interface ImQuitWorkerLogger extends PeriodicLogger {
  error(object: Record<string, unknown>, message: string): void;
}

/**
 * Every node drains the retry queue of device_quit calls the IM server missed (docs/design.md §3.4); jobs
 * are claimed one by one in the Kv store, so nodes never work the same job at once.
 */
export function startImQuitWorker(sessions: SessionService, metrics: Metrics, intervalMs: number, log: ImQuitWorkerLogger): PeriodicTask {
  return runPeriodically('im-quit-retry', intervalMs, async () => {
    const report = await sessions.im.drainOwedQuits();
    if (report === null) return;
    metrics.imQuitRetries.inc({ result: 'delivered' }, report.delivered);
    metrics.imQuitRetries.inc({ result: 'failed' }, report.failed);
    metrics.imQuitRetries.inc({ result: 'overdue' }, report.overdue);
    // Until it lands, a logged-out or banned device may still be connected to the IM server: an
    // operator must know. The quit is not given up: it is retried at the capped interval.
    if (report.overdue > 0) log.error({ overdue: report.overdue }, 'device_quit still owed after im.quit_retry.max_attempts; retrying until the IM server takes it');
    metrics.imQuitPending.set(await sessions.im.owedQuitCount());
  }, log);
}
