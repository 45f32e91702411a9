/**
 * The last step of a QR login: the requester trades the auth code (collected with its poll secret)
 * for a session of the account that approved, on the requester's device.
 */
import { LatchkeyError, accountDisabled, notFound } from '../../core/errors.ts';
import type { AuditContext } from '../../ops/audit.ts';
import type { LoginResponse } from '../login-response.ts';
import { startSession } from '../start-session.ts';
import { visibleStatus, type QrRecord } from './record.ts';
import { approverSession, lapsedApproval, type LapsedApproval } from './approver.ts';
import { provedSecondFactor } from '../mfa/step-up.ts';
import type { MfaChallenge } from '../mfa/second-step.ts';
import { sameSecret } from '../../core/constant-time.ts';
import { deriveAuthCode, matchesHash } from './secrets.ts';
import { readQrRecord, transition } from './transition.ts';
import type { QrFlowDeps } from './deps.ts';

export interface ExchangeInput {
  readonly uuid: string;
  readonly authCode: string;
  readonly pollSecret: string;
}

/**
 * Works once, only after approval, only with the poll secret, only before the code lapses. The
 * consumption is the compare-and-set authed → consumed: of any number of concurrent exchanges
 * exactly one wins (octo-server's GET-then-DEL let one code log in twice, docs/octo-server.md §8.2).
 */
export async function exchangeAuthCode(deps: QrFlowDeps, input: ExchangeInput, context: AuditContext): Promise<LoginResponse | MfaChallenge> {
  const found = await readQrRecord(deps.kv, input.uuid);
  // Wrong secret, unknown uuid, wrong code, or no code yet (not approved): all the same 404, so an
  // attacker holding only the uuid learns nothing about the request.
  if (found === null || !matchesHash(input.pollSecret, found.poll_secret_hash) || found.code_nonce === null
    || !sameSecret(input.authCode, deriveAuthCode(input.pollSecret, input.uuid, found.code_nonce))) {
    throw notFound('auth code');
  }
  const { record } = await transition(deps.kv, deps.clock, input.uuid, (current, now) => {
    if (current.status === 'consumed') throw new LatchkeyError('expired', 'this auth code was already used');
    if (current.status !== 'authed' || visibleStatus(current, now) === 'expired') {
      throw new LatchkeyError('expired', 'this auth code has expired');
    }
    return { ...current, status: 'consumed', expires_at: now };
  });

  const loginContext = { ...context, flag: record.requester.flag, device: record.requester.device };
  const user = record.scanner_uid === null ? null : await deps.accounts.findByUid(record.scanner_uid);
  if (user === null) throw notFound('account');
  // The approval may be a minute old: an account banned since then gets no new session.
  if (user.status !== 'active') {
    deps.metrics.logins.inc({ method: 'qr', result: 'disabled' });
    await deps.audit.record({ type: 'login', uid: user.uid, sid: null, result: 'fail', reason: 'account_disabled', context });
    throw accountDisabled();
  }
  const lapsed = await lapsedApproval(deps, record, user);
  if (lapsed !== null) await refuseLapsed(deps, user.uid, null, lapsed, context);
  // An account with a second factor: an approval by a session that showed none of its own (a
  // password-only phone, a stolen token) is one factor, so the browser takes the second step
  // (docs/api.md §14).
  if (!provedSecondFactor(await approverSession(deps, record))) {
    const challenge = await deps.secondStep.challenge(user, 'qr', loginContext);
    if (challenge !== null) return challenge;
  }
  const response = await startSession(deps, user, 'qr', loginContext);
  await requireStandingApproval(deps, record, response, context);
  return response;
}

/**
 * The approver may be ended while this exchange issues its session: a sweep (reset, revoke-all)
 * that read the index before the new session joined it cannot see it. So look again once it is
 * indexed — the two-sided check of a ban (docs/design.md §3.2, invariant 5): whichever runs second sees
 * the other. A reset or change sets the password before it sweeps, so the stamp catches the sweep
 * that has not reached the approver yet.
 */
async function requireStandingApproval(deps: QrFlowDeps, record: QrRecord, response: LoginResponse, context: AuditContext): Promise<void> {
  const current = await deps.accounts.findByUid(response.uid);
  if (current === null || current.status !== 'active') {
    await deps.sessions.revoke(response.uid, response.sid, 'ban');
    deps.metrics.logins.inc({ method: 'qr', result: 'disabled' });
    await deps.audit.record({ type: 'login', uid: response.uid, sid: response.sid, result: 'fail', reason: 'account_disabled', context });
    throw accountDisabled();
  }
  const lapsed = await lapsedApproval(deps, record, current);
  if (lapsed !== null) await refuseLapsed(deps, response.uid, response.sid, lapsed, context);
}

/** 410 like any used-up code: the approval it carried is gone, and the browser must ask anew. */
async function refuseLapsed(deps: QrFlowDeps, uid: string, issuedSid: string | null, lapsed: LapsedApproval, context: AuditContext): Promise<never> {
  if (issuedSid !== null) await deps.sessions.revoke(uid, issuedSid, lapsed === 'password_changed' ? 'password' : 'aborted');
  deps.metrics.logins.inc({ method: 'qr', result: 'fail' });
  await deps.audit.record({ type: 'login', uid, sid: issuedSid, result: 'fail', reason: `qr_${lapsed}`, context });
  throw new LatchkeyError('expired', lapsed === 'password_changed'
    ? 'the password changed since this login was approved'
    : 'the session that approved this login has ended');
}
