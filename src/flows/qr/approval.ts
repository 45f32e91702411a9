/**
 * The scanner's side of a QR login: the signed-in app scans the code, sees who is asking, and
 * approves or rejects. Only the app may do this (a stolen browser token must not be able to mint
 * more browser sessions), and only the app session that scanned may answer.
 */
import { LatchkeyError, forbidden, notFound } from '../../core/errors.ts';
import type { User } from '../../ports/accounts.ts';
import type { Session } from '../../core/sessions/record.ts';
import type { AuditContext } from '../../ops/audit.ts';
import { visibleStatus, type Requester } from './record.ts';
import { newCodeNonce } from './secrets.ts';
import { passwordStamp } from './approver.ts';
import { transition, type QrStep } from './transition.ts';
import type { QrFlowDeps } from './deps.ts';

const APP_FLAG = 0;

const expired = (): LatchkeyError => new LatchkeyError('expired', 'this login request has expired or was already answered');

export interface ScanAnswer {
  readonly status: 'scanned';
  readonly requester: Pick<Requester, 'ip' | 'flag' | 'user_agent'> & { readonly device_name: string; readonly device_model: string };
}

export async function scanLoginRequest(deps: QrFlowDeps, scanner: Session, uuid: string, context: AuditContext): Promise<ScanAnswer> {
  requireApp(scanner);
  const step: QrStep = (current, now) => {
    if (visibleStatus(current, now) === 'expired') throw expired();
    // First scanner wins: a second account (someone who photographed the screen) is refused, and
    // so is a second session of the same account: the approval belongs to one session (approver.ts).
    if (current.scanner_uid !== null && current.scanner_uid !== scanner.uid) {
      throw new LatchkeyError('conflict', 'this login request was scanned by another account');
    }
    if (current.scanner_uid !== null && current.scanner_sid !== scanner.sid) {
      throw new LatchkeyError('conflict', 'this login request was scanned by another device');
    }
    if (current.status === 'scanned') return null;
    if (current.status !== 'waitScan') throw expired();
    // The scanner gets a fresh window to decide; the request no longer lapses while on the phone.
    return {
      ...current,
      status: 'scanned',
      scanner_uid: scanner.uid,
      scanner_sid: scanner.sid,
      expires_at: now + deps.config.qr.requestTtlSeconds * 1000,
    };
  };
  const { record } = await audited(deps, 'qr_scan', scanner, context, () => transition(deps.kv, deps.clock, uuid, step));
  const { requester } = record;
  return {
    status: 'scanned',
    requester: {
      device_name: requester.device.device_name,
      device_model: requester.device.device_model,
      ip: requester.ip,
      flag: requester.flag,
      user_agent: requester.user_agent,
    },
  };
}

/**
 * Approve or reject. Approval draws the nonce the auth code is derived from (secrets.ts) in the
 * same compare-and-set that moves the record to `authed`, so a poller that sees `authed` can always
 * collect the code, and of two concurrent approvals only the winner's nonce exists. The code is
 * never returned here: only the poll secret's holder can derive it (octo-server gave it to the app
 * and to anyone polling).
 */
export async function answerLoginRequest(
  deps: QrFlowDeps,
  scanner: Session,
  uuid: string,
  approve: boolean,
  context: AuditContext,
): Promise<{ status: 'authed' | 'rejected' }> {
  requireApp(scanner);
  const target = approve ? 'authed' : 'rejected';
  const nonce = newCodeNonce(deps.random);
  const codeTtlMs = deps.config.qr.authCodeTtlSeconds * 1000;
  const stamp = approve ? passwordStamp(await scannerAccount(deps, scanner)) : null;
  const step: QrStep = (current, at) => {
    // The scanning session, not merely its account: the auth code carries this session's approval.
    if (current.scanner_uid !== scanner.uid || current.scanner_sid !== scanner.sid) {
      throw forbidden('only the app session that scanned this code can answer it');
    }
    if (visibleStatus(current, at) === 'expired') throw expired();
    if (current.status === target) return null;
    if (current.status !== 'scanned') throw new LatchkeyError('conflict', 'this login request was already answered');
    return approve
      ? { ...current, status: 'authed', code_nonce: nonce, password_stamp: stamp, expires_at: at + codeTtlMs }
      : { ...current, status: 'rejected', expires_at: at };
  };
  await audited(deps, approve ? 'qr_grant' : 'qr_reject', scanner, context, () => transition(deps.kv, deps.clock, uuid, step));
  return { status: target };
}

async function scannerAccount(deps: QrFlowDeps, scanner: Session): Promise<User> {
  const user = await deps.accounts.findByUid(scanner.uid);
  if (user === null) throw notFound('account');
  return user;
}

function requireApp(session: Session): void {
  if (session.device_flag !== APP_FLAG) throw forbidden('only the signed-in app can scan or answer a login QR code');
}

/** Records the step's outcome: refused attempts (a second scanner, a stranger granting) are the interesting ones. */
async function audited<T>(
  deps: QrFlowDeps,
  type: 'qr_scan' | 'qr_grant' | 'qr_reject',
  scanner: Session,
  context: AuditContext,
  run: () => Promise<T>,
): Promise<T> {
  try {
    const result = await run();
    await deps.audit.record({ type, uid: scanner.uid, sid: scanner.sid, result: 'ok', reason: null, context });
    return result;
  } catch (error) {
    const reason = error instanceof LatchkeyError ? error.code : 'error';
    await deps.audit.record({ type, uid: scanner.uid, sid: scanner.sid, result: 'fail', reason, context });
    throw error;
  }
}
