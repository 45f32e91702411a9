import type { AccountRepo, AccountStatus, Role } from '../ports/accounts.ts';
import type { Clock } from '../ports/clock.ts';
import type { SessionService } from './sessions/service.ts';
import { notFound } from './errors.ts';

/**
 * Ban: set the status first, then sweep the session index. A login running at the same time
 * re-checks the status after joining the index, so one of the two always sees the other
 * (DESIGN §3.2, invariant 5). Returns how many sessions the sweep ended.
 */
export async function setAccountStatus(
  deps: { accounts: AccountRepo; sessions: SessionService; clock: Clock },
  uid: string,
  status: AccountStatus,
): Promise<number> {
  if (!(await deps.accounts.setStatus(uid, status, deps.clock.now()))) throw notFound('user');
  return status === 'banned' ? deps.sessions.revokeAll(uid, 'ban') : 0;
}

/**
 * Promotes or demotes. Admin routes read the role from the account store on every call, so a
 * demotion takes effect on the admin's very next request, with no session to end.
 */
export async function setRole(deps: { accounts: AccountRepo; clock: Clock }, uid: string, role: Role): Promise<void> {
  if (!(await deps.accounts.setRole(uid, role, deps.clock.now()))) throw notFound('user');
}
