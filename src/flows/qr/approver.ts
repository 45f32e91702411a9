/**
 * An auth code speaks for the app session that approved it (docs/design.md §3.5: a one-time thing holds
 * the sid of the session that approved it, and is dead once that session is). Ending that session
 * — logout, revoke, a password change signing out the others, a reset, a ban — must void the code,
 * or a phone the user has just signed out (or that was stolen and revoked) keeps handing out fresh
 * 30-day sessions for as long as its approvals are pending.
 */
import { createHash } from 'node:crypto';
import { sessionKey } from '../../core/sessions/keys.ts';
import { parseSessionRecord, type Session } from '../../core/sessions/record.ts';
import type { User } from '../../ports/accounts.ts';
import type { QrRecord } from './record.ts';
import type { QrFlowDeps } from './deps.ts';

/**
 * The password as it was at approval, as a fingerprint (never the hash itself in the QR record).
 * A reset or change sets the new hash before it sweeps the sessions, so an exchange that joined
 * the index after the sweep read it still sees the change here.
 */
export function passwordStamp(user: User): string | null {
  return user.passwordHash === null ? null : createHash('sha256').update(user.passwordHash).digest('base64url');
}

/**
 * Whether the approving session is alive now. Reads the session record itself, as validation does
 * (invariant 6: no cache): the record is deleted by the very step that ends a session.
 */
export async function approverAlive(deps: Pick<QrFlowDeps, 'kv' | 'clock'>, record: QrRecord): Promise<boolean> {
  return (await approverSession(deps, record)) !== null;
}

/** The approving session while it is alive, else null. */
export async function approverSession(deps: Pick<QrFlowDeps, 'kv' | 'clock'>, record: QrRecord): Promise<Session | null> {
  const sid = record.scanner_sid;
  if (sid === null || record.scanner_uid === null) return null;
  const raw = await deps.kv.get(sessionKey(sid));
  const session = raw === null ? null : parseSessionRecord(sid, raw);
  return session !== null && session.uid === record.scanner_uid && session.expires_at > deps.clock.now() ? session : null;
}


/** Why an approval no longer stands, or null while it does. */
export type LapsedApproval = 'approver_ended' | 'password_changed';

export async function lapsedApproval(deps: Pick<QrFlowDeps, 'kv' | 'clock'>, record: QrRecord, user: User): Promise<LapsedApproval | null> {
  if (passwordStamp(user) !== record.password_stamp) return 'password_changed';
  return (await approverAlive(deps, record)) ? null : 'approver_ended';
}
