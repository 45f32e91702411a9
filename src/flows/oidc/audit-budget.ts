/**
 * Failures no account owns (a callback on a state someone started and abandoned, a refused stored
 * return_to) are worth a row to the operator, but anyone can cause them: an authorize costs
 * nothing, and per-address limits do not bound many addresses. So at most `oidc.rate_limit.max`
 * such rows per window are written across all nodes; every one is counted in the metrics anyway.
 */
import type { Kv } from '../../ports/kv.ts';
import type { OidcConfig } from '../../config/oidc.ts';

const BUDGET_KEY = 'oidc:outsider_audit';

/** True when one more unowned failure may be audited. A store that cannot count does not stop the row. */
export async function withinOutsiderAuditBudget(kv: Kv, limit: OidcConfig['rateLimit']): Promise<boolean> {
  try {
    return (await kv.incr(BUDGET_KEY, limit.windowSeconds * 1000)).value <= limit.max;
  } catch {
    return true;
  }
}
