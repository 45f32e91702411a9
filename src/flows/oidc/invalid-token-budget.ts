/**
 * How many invalid back-channel logout tokens one client address may send per window
 * (`oidc.rate_limit`). Only refused tokens spend it: the IdP's own logouts come from one egress
 * address, in bursts when an admin disables many users, and a logout dropped with a 429 would leave
 * sessions alive that the IdP ended. The count is raised before the answer is chosen (INCR returns
 * the raised value), so parallel invalid tokens cannot all be told "400, try again"; once the budget
 * is spent, tokens are refused before any signature is checked.
 */
import { rateLimited } from '../../core/errors.ts';
import type { Kv } from '../../ports/kv.ts';
import type { OidcConfig } from '../../config/oidc.ts';

type Limit = OidcConfig['rateLimit'];

const budgetKey = (ip: string): string => `rl:oidc_backchannel_invalid:${ip}`;

/** Throws rate_limited when this address has already spent its budget. */
export async function refuseWhenSpent(kv: Kv, ip: string, limit: Limit): Promise<void> {
  const key = budgetKey(ip);
  const [count, ttlMs] = await Promise.all([kv.get(key), kv.pttl(key)]);
  if (count !== null && Number(count) >= limit.max) throw rateLimited(retryAfterSeconds(ttlMs ?? 0, limit));
}

/** Counts one invalid token; throws rate_limited when it was past the budget. */
export async function spendOnInvalid(kv: Kv, ip: string, limit: Limit): Promise<void> {
  const { value, ttlMs } = await kv.incr(budgetKey(ip), limit.windowSeconds * 1000);
  if (value > limit.max) throw rateLimited(retryAfterSeconds(ttlMs, limit));
}

const retryAfterSeconds = (ttlMs: number, limit: Limit): number => (ttlMs > 0 ? Math.max(1, Math.ceil(ttlMs / 1000)) : limit.windowSeconds);
