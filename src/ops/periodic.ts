/**
 * A task run every `intervalMs` on this node: never two runs at once, the timer never keeps the
 * process alive, and stop() waits for a run in progress (so shutdown does not close the stores
 * under it).
 */
export interface PeriodicTask {
  stop(): Promise<void>;
}

export interface PeriodicLogger {
  warn(object: Record<string, unknown>, message: string): void;
}

export function runPeriodically(name: string, intervalMs: number, task: () => Promise<void>, log: PeriodicLogger): PeriodicTask {
  let running: Promise<void> | null = null;
  let stopped = false;
  const tick = () => {
    if (stopped || running !== null) return;
    running = task()
      .catch((error: unknown) => log.warn({ err: error, task: name }, 'periodic task failed; it runs again at the next interval'))
      .finally(() => {
        running = null;
      });
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

/**
 * runPeriodically, with a first run `firstAfterMs` after start: a node that restarts more often
 * than the interval still does the work. stop() also waits for that first run.
 */
export function runSoonAndPeriodically(
  name: string, firstAfterMs: number, intervalMs: number, task: () => Promise<void>, log: PeriodicLogger,
): PeriodicTask {
  let firstRun: Promise<void> = Promise.resolve();
  const first = setTimeout(() => {
    firstRun = task().catch((error: unknown) => log.warn({ err: error, task: name }, 'periodic task failed; it runs again at the next interval'));
  }, firstAfterMs);
  first.unref();
  const periodic = runPeriodically(name, intervalMs, task, log);
  return {
    async stop() {
      clearTimeout(first);
      await firstRun;
      await periodic.stop();
    },
  };
}
