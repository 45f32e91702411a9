import type { AccessRemoval, AccountRepo, AccountStatus, Role } from '../ports/accounts.ts';
import type { DomainEvent } from '../ports/events.ts';
import type { Clock } from '../ports/clock.ts';
import type { SessionService } from './sessions/service.ts';
import { LatchkeyError, notFound } from './errors.ts';

/**
 * Ban: set the status first, then sweep the session index. A login running at the same time
 * re-checks the status after joining the index, so one of the two always sees the other
 * (docs/design.md §3.2, invariant 5). Returns how many sessions the sweep ended.
 */
export async function setAccountStatus(
  deps: { accounts: AccountRepo; sessions: SessionService; clock: Clock },
  uid: string,
  status: AccountStatus,
  options: AccessChangeOptions = {},
): Promise<number> {
  if (status === 'banned') {
    await removeAccess(deps, uid, { status }, options);
    return deps.sessions.revokeAll(uid, 'ban');
  }
  if (!(await deps.accounts.setStatus(uid, status, deps.clock.now(), options.events))) throw notFound('user');
  return 0;
}

/**
 * Promotes or demotes. Admin routes read the role from the account store on every call, so a
 * demotion takes effect on the admin's very next request, with no session to end.
 */
export async function setRole(deps: { accounts: AccountRepo; clock: Clock }, uid: string, role: Role, options: AccessChangeOptions = {}): Promise<void> {
  if (role === 'user') return removeAccess(deps, uid, { role }, options);
  if (!(await deps.accounts.setRole(uid, role, deps.clock.now(), options.events))) throw notFound('user');
}

export interface AccessChangeOptions {
  /**
   * Makes the change even when it leaves no active admin, and is called when it did. Only the
   * operator's CLI passes it: it has the database and can always create an admin again, and in an
   * incident it must be able to ban the one admin account a thief holds.
   */
  readonly allowLastAdmin?: () => void;
  /** Written with the change, in its transaction (the webhook outbox, docs/design.md §3.6). */
  readonly events?: readonly DomainEvent[];
}

/**
 * A ban or demotion that would leave no active admin is refused, atomically: two admins banning
 * each other at once, or a thief with one admin's token racing the others, would otherwise leave
 * nobody who can undo it (or ban the thief).
 */
async function removeAccess(
  deps: { accounts: AccountRepo; clock: Clock },
  uid: string,
  change: AccessRemoval,
  options: AccessChangeOptions,
): Promise<void> {
  const now = deps.clock.now();
  const result = await deps.accounts.removeAccessKeepingAnAdmin(uid, change, now, options.events);
  if (result === 'not_found') throw notFound('user');
  if (result === 'done') return;
  if (options.allowLastAdmin === undefined) {
    throw new LatchkeyError('conflict', 'this would leave no active admin; make another account an admin first', { field: 'uid' });
  }
  const done = 'status' in change
    ? await deps.accounts.setStatus(uid, change.status, now, options.events)
    : await deps.accounts.setRole(uid, change.role, now, options.events);
  if (!done) throw notFound('user');
  options.allowLastAdmin();
}
