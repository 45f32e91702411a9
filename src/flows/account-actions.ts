/**
 * What an operator does to an account — ban, unban, change its role, end all its sessions — each
 * with its audit row, written here once whether an administrator acted over HTTP or the operator
 * from the command line (the reason's format: ops/audit.ts, docs/api.md §9).
 */
import { setAccountStatus, setRole, type AccessChangeOptions } from '../core/accounts.ts';
import type { SessionService } from '../core/sessions/service.ts';
import type { AccountRepo, AccountStatus, Role } from '../ports/accounts.ts';
import type { Clock } from '../ports/clock.ts';
import type { SecondFactorRepo } from '../ports/second-factors.ts';
import type { DomainEvent } from '../ports/events.ts';
import type { PasskeyRepo } from '../ports/passkeys.ts';
import { revokeAllReason, roleChangeReason, statusChangeReason, type AuditContext, type AuditTrail, type Operator } from '../ops/audit.ts';

export interface AccountActionDeps {
  readonly accounts: AccountRepo;
  readonly sessions: SessionService;
  readonly clock: Clock;
  readonly audit: AuditTrail;
}

/** Who acted and from where: an administrator's request, or the CLI. */
export interface Actor {
  readonly operator: Operator;
  readonly context: AuditContext;
}

/** Bans (ending every session) or unbans; returns how many sessions the ban ended. */
export async function setUserStatus(deps: AccountActionDeps, uid: string, status: AccountStatus, actor: Actor, options: AccessChangeOptions = {}): Promise<number> {
  const event: DomainEvent = { type: status === 'banned' ? 'user.banned' : 'user.unbanned', data: { uid, by: operatorName(actor.operator) } };
  const revoked = await setAccountStatus(deps, uid, status, { ...options, events: [event] });
  await deps.audit.record({
    type: status === 'banned' ? 'ban' : 'unban', uid, sid: null, result: 'ok',
    reason: statusChangeReason(actor.operator, revoked), context: actor.context,
  });
  return revoked;
}

export async function changeRole(deps: AccountActionDeps, uid: string, role: Role, actor: Actor, options: AccessChangeOptions = {}): Promise<void> {
  await setRole(deps, uid, role, { ...options, events: [{ type: 'user.role_changed', data: { uid, role, by: operatorName(actor.operator) } }] });
  await deps.audit.record({ type: 'role_change', uid, sid: null, result: 'ok', reason: roleChangeReason(actor.operator, role), context: actor.context });
}

/** Ends every session of the account; returns how many there were. */
export async function revokeAllSessions(deps: AccountActionDeps, uid: string, actor: Actor): Promise<number> {
  const revoked = await deps.sessions.revokeAll(uid, 'all');
  await deps.audit.record({ type: 'revoke', uid, sid: null, result: 'ok', reason: revokeAllReason(actor.operator, revoked), context: actor.context });
  return revoked;
}

/**
 * Removes every second factor of the account (a user who lost their phone and codes) and ends all
 * its sessions, so whoever held one signs in again under the account's new state.
 */
export async function resetSecondFactors(
  deps: AccountActionDeps & { readonly factors: SecondFactorRepo; readonly passkeys: PasskeyRepo }, uid: string, actor: Actor,
): Promise<number> {
  const removed = await deps.factors.removeTotp(uid);
  // Passkeys too: a lost phone is often the authenticator that held them.
  const passkeys = await deps.passkeys.removeAll(uid);
  const revoked = await deps.sessions.revokeAll(uid, 'all');
  await deps.audit.record({
    type: 'mfa_reset', uid, sid: null, result: 'ok',
    reason: `${revokeAllReason(actor.operator, revoked)}; totp:${removed ? 1 : 0}; passkeys:${passkeys}`, context: actor.context,
  });
  return revoked;
}

/** Who acted, in an event's `by`: `admin:<uid>` or `cli` (as in the audit row's reason). */
export function operatorName(operator: Operator): string {
  return operator === 'cli' ? 'cli' : `admin:${operator.admin}`;
}
