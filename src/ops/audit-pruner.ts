import type { AccountRepo } from '../ports/accounts.ts';
import type { Clock } from '../ports/clock.ts';
import type { Kv } from '../ports/kv.ts';
import type { Metrics } from './metrics.ts';
import { runSoonAndPeriodically, type PeriodicLogger, type PeriodicTask } from './periodic.ts';

const PRUNE_INTERVAL_MS = 3600_000;
/** Held for one interval by the node that pruned; the others skip that interval. */
export const AUDIT_PRUNE_LOCK_KEY = 'audit-prune-lock';

export interface AuditPruneDeps {
  readonly accounts: AccountRepo;
  readonly kv: Kv;
  readonly clock: Clock;
  readonly metrics: Metrics;
}

/**
 * Deletes audit events older than the retention. Deleting by age is idempotent, so any node may run
 * it; the lock (one per interval, across nodes) only spares the database the same DELETE from every node.
 */
export async function pruneAudit(deps: AuditPruneDeps, retentionDays: number, lockMs = PRUNE_INTERVAL_MS): Promise<number | null> {
  if (!(await deps.kv.set(AUDIT_PRUNE_LOCK_KEY, String(deps.clock.now()), { nx: true, ttlMs: lockMs }))) return null;
  const pruned = await deps.accounts.pruneAudit(deps.clock.now() - retentionDays * 86_400_000);
  deps.metrics.auditPruned.inc(pruned);
  return pruned;
}

/** Runs pruneAudit once at start (a node that restarts often still prunes) and hourly after. */
export function startAuditPruner(deps: AuditPruneDeps, retentionDays: number, log: PeriodicLogger): PeriodicTask {
  return runSoonAndPeriodically('audit-prune', 1000, PRUNE_INTERVAL_MS, async () => {
    await pruneAudit(deps, retentionDays);
  }, log);
}
