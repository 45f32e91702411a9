import type { User } from '../../ports/accounts.ts';
import type { CodeChannel } from '../../ports/sender.ts';
import { LatchkeyError, invalidRequest, notFound } from '../../core/errors.ts';
import { normalizeDestination, type Destination } from '../../core/destinations.ts';
import type { AuditContext } from '../../ops/audit.ts';
import { consumeCode } from './consume-code.ts';
import { addressOf, proven, type CodeFlowDeps } from './deps.ts';

export type VerifyAddressDeps = Pick<CodeFlowDeps, 'accounts' | 'codes' | 'audit' | 'clock'>;

/**
 * POST /v1/user/verify_address: the signed-in user enters a `verify` code sent to an address their
 * account holds, and from then on the address is theirs (code login, reset and SSO linking find it).
 *
 * Only the account's own address can be proven here, never a new one: a thief holding one stolen
 * session could otherwise attach their own mailbox and then take the account for good with a
 * password reset (which needs nothing else). Addresses are set at registration.
 */
export async function verifyAddress(
  deps: VerifyAddressDeps,
  uid: string,
  channel: CodeChannel,
  to: string | undefined,
  guess: string,
  context: AuditContext,
): Promise<{ readonly status: 200; readonly verified: true }> {
  const user = await deps.accounts.findByUid(uid);
  if (user === null) throw notFound('user');
  const destination = heldDestination(user, channel, to);
  if (proven(user, destination)) return { status: 200, verified: true };
  try {
    await consumeCode(deps.codes, ['verify'], destination, guess);
  } catch (error) {
    const reason = error instanceof LatchkeyError ? error.code : 'error';
    await deps.audit.record({ type: 'address_verify', uid, sid: null, result: 'fail', reason: `${channel}:code:${reason}`, context });
    throw error;
  }
  const address = addressOf(destination);
  if (address === null || !(await deps.accounts.markVerified(uid, address, deps.clock.now()))) {
    // The address's owner proved it for another account between the read above and now.
    throw new LatchkeyError('conflict', 'the address is no longer on this account', { field: 'to' });
  }
  await deps.audit.record({ type: 'address_verify', uid, sid: null, result: 'ok', reason: channel, context });
  return { status: 200, verified: true };
}

/** The account's address on `channel`, which `to` (when given) must name. */
function heldDestination(user: User, channel: CodeChannel, to: string | undefined): Destination {
  const held = channel === 'email'
    ? user.email
    : user.zone !== null && user.phone !== null ? `${user.zone}-${user.phone}` : null;
  if (held === null) throw invalidRequest('channel', `the account has no ${channel === 'email' ? 'email address' : 'phone number'}`);
  const destination = normalizeDestination(channel, held);
  if (to !== undefined && normalizeDestination(channel, to).to !== destination.to) {
    throw invalidRequest('to', `only the account's own ${channel === 'email' ? 'email address' : 'phone number'} can be verified`);
  }
  return destination;
}
