import type { User } from '../../ports/accounts.ts';
import { LatchkeyError, accountDisabled, invalidRequest } from '../../core/errors.ts';
import { checkPasswordPolicy } from '../../core/passwords.ts';
import type { Destination } from '../../core/destinations.ts';
import type { AuditContext } from '../../ops/audit.ts';
import { consumeCode, wrongCode } from './consume-code.ts';
import { findByDestination, type CodeFlowDeps } from './deps.ts';

/**
 * POST /v1/user/pwdforget: a reset_password code sets a new password and ends EVERY session of the
 * account. octo-server left all tokens alive after a reset (research spec §7 item 3), so a thief
 * kept the account the owner had just recovered.
 */
export async function resetPassword(
  deps: CodeFlowDeps,
  destination: Destination,
  guess: string,
  newPassword: string,
  context: AuditContext,
): Promise<void> {
  // Before consuming: a too-short password must not cost the user their code.
  const problem = checkPasswordPolicy(newPassword);
  if (problem !== null) throw invalidRequest('new_password', problem);
  try {
    await consumeCode(deps.codes, ['reset_password'], destination, guess);
  } catch (error) {
    const reason = error instanceof LatchkeyError ? error.code : 'error';
    await deps.audit.record({ type: 'password_reset', uid: null, sid: null, result: 'fail', reason: `code:${reason}`, context });
    throw error;
  }
  const user = await findByDestination(deps.accounts, destination);
  if (user === null) {
    // The code was never delivered (no account): whoever used it guessed it.
    await deps.audit.record({ type: 'password_reset', uid: null, sid: null, result: 'fail', reason: 'code:no_account', context });
    throw wrongCode();
  }
  if (user.status !== 'active') {
    await deps.audit.record({ type: 'password_reset', uid: user.uid, sid: null, result: 'fail', reason: 'account_disabled', context });
    throw accountDisabled();
  }
  await replacePassword(deps, user, await deps.hasher.hash(newPassword));
  const revoked = await deps.sessions.revokeAll(user.uid, 'password');
  await deps.audit.record({ type: 'password_reset', uid: user.uid, sid: null, result: 'ok', reason: `revoked:${revoked}`, context });
}

/** The code proves ownership, so the reset wins over a concurrent change: re-read and retry the compare-and-set. */
async function replacePassword(deps: CodeFlowDeps, user: User, next: string): Promise<void> {
  let expected = user.passwordHash;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (await deps.accounts.updatePasswordHash(user.uid, expected, next, deps.clock.now())) return;
    const current = await deps.accounts.findByUid(user.uid);
    if (current === null) throw wrongCode();
    expected = current.passwordHash;
  }
  throw new LatchkeyError('conflict', 'the password was changed meanwhile; try again', { field: 'new_password' });
}
