/**
 * The last step of a QR login: the requester trades the auth code (collected with its poll secret)
 * for a session of the account that approved, on the requester's device.
 */
import { LatchkeyError, accountDisabled, notFound } from '../../core/errors.ts';
import type { AuditContext } from '../../ops/audit.ts';
import type { LoginResponse } from '../login-response.ts';
import { startSession } from '../start-session.ts';
import { authCodeKey, visibleStatus } from './record.ts';
import { matchesHash } from './secrets.ts';
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
 * exactly one wins (octo-server's GET-then-DEL let one code log in twice, spec §7.2).
 */
export async function exchangeAuthCode(deps: QrFlowDeps, input: ExchangeInput, context: AuditContext): Promise<LoginResponse> {
  const found = await readQrRecord(deps.kv, input.uuid);
  // Wrong secret, unknown uuid, wrong code, or no code yet (not approved): all the same 404, so an
  // attacker holding only the uuid learns nothing about the request.
  if (found === null || !matchesHash(input.pollSecret, found.poll_secret_hash) || !matchesHash(input.authCode, found.code_hash)) {
    throw notFound('auth code');
  }
  const { record } = await transition(deps.kv, deps.clock, input.uuid, (current, now) => {
    if (current.status === 'consumed') throw new LatchkeyError('expired', 'this auth code was already used');
    if (current.status !== 'authed' || visibleStatus(current, now) === 'expired') {
      throw new LatchkeyError('expired', 'this auth code has expired');
    }
    return { ...current, status: 'consumed', expires_at: now };
  });
  if (record.code_hash !== null) await deps.kv.del(authCodeKey(input.uuid, record.code_hash));

  const loginContext = { ...context, flag: record.requester.flag, device: record.requester.device };
  const user = record.scanner_uid === null ? null : await deps.accounts.findByUid(record.scanner_uid);
  if (user === null) throw notFound('account');
  // The approval may be a minute old: an account banned since then gets no new session.
  if (user.status !== 'active') {
    deps.metrics.logins.inc({ method: 'qr', result: 'disabled' });
    await deps.audit.record({ type: 'login', uid: user.uid, sid: null, result: 'fail', reason: 'account_disabled', context });
    throw accountDisabled();
  }
  return startSession(deps, user, 'qr', loginContext);
}
