/**
 * What a signed-in user does to their own sessions — sign out, end one session, end all the others,
 * forget a device — each with its audit row, written here rather than by the route that asked.
 */
import { notFound } from '../core/errors.ts';
import type { Session } from '../core/sessions/record.ts';
import type { SessionService } from '../core/sessions/service.ts';
import type { AccountRepo } from '../ports/accounts.ts';
import type { AuditContext, AuditTrail } from '../ops/audit.ts';
import type { Metrics } from '../ops/metrics.ts';

export interface SessionActionDeps {
  readonly sessions: SessionService;
  readonly accounts: AccountRepo;
  readonly audit: AuditTrail;
  readonly metrics: Metrics;
}

/**
 * Ends this session. `im` (with an IM bridge): whether the IM server was told; `failed` still means
 * the session is over, and the device_quit is retried.
 */
export async function signOut(deps: SessionActionDeps, session: Session, context: AuditContext): Promise<{ im: 'ok' | 'failed' | null }> {
  const { ended, im } = await deps.sessions.logoutWithOutcome(session);
  deps.metrics.logouts.inc({ result: !ended ? 'already_ended' : im === 'failed' ? 'im_fail' : 'ok' });
  await deps.audit.record({ type: 'logout', uid: session.uid, sid: session.sid, result: 'ok', reason: im === 'failed' ? 'im_failed' : null, context });
  return { im };
}

/** Ends one of the user's own sessions; 404 when it is not theirs or no longer live. */
export async function revokeOwnSession(deps: SessionActionDeps, current: Session, sid: string, context: AuditContext): Promise<void> {
  if (!(await deps.sessions.revoke(current.uid, sid, 'revoked'))) throw notFound('session');
  await deps.audit.record({ type: 'revoke', uid: current.uid, sid, result: 'ok', reason: 'user', context });
}

/** Ends every session of the user but this one; returns how many. */
export async function revokeOtherSessions(deps: SessionActionDeps, current: Session, context: AuditContext): Promise<number> {
  const revoked = await deps.sessions.revokeOthers(current.uid, current.sid);
  await deps.audit.record({ type: 'revoke', uid: current.uid, sid: current.sid, result: 'ok', reason: `others:${revoked}`, context });
  return revoked;
}

/** Ends the sessions of one of the user's devices and forgets it; 404 when there was neither. */
export async function forgetDevice(deps: SessionActionDeps, current: Session, deviceId: string, context: AuditContext): Promise<number> {
  const revoked = await deps.sessions.revokeDevice(current.uid, deviceId);
  const forgotten = await deps.accounts.deleteDevice(current.uid, deviceId);
  if (!forgotten && revoked === 0) throw notFound('device');
  await deps.audit.record({ type: 'revoke', uid: current.uid, sid: null, result: 'ok', reason: 'device', context });
  return revoked;
}
