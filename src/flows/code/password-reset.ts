import type { User } from '../../ports/accounts.ts';
import type { DomainEvent } from '../../ports/events.ts';
import { LatchkeyError, accountDisabled, invalidRequest } from '../../core/errors.ts';
import { checkPasswordPolicy } from '../../core/passwords.ts';
import type { Destination } from '../../core/destinations.ts';
import type { AuditContext } from '../../ops/audit.ts';
import { consumeCode, wrongCode } from './consume-code.ts';
import { findOwner, type CodeFlowDeps } from './deps.ts';

/**
 * POST /v1/user/pwdforget: a reset_password code sets a new password and ends EVERY session of the
 * account. octo-server left all tokens alive after a reset (docs/octo-server.md §8.3), so a thief
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
  // The address itself is the only account word used here: the caller has not proven who they are yet.
  const problem = checkPasswordPolicy(newPassword, [destination.to]);
  if (problem !== null) throw invalidRequest('new_password', problem);
  try {
    await consumeCode(deps.codes, ['reset_password'], destination, guess);
  } catch (error) {
    const reason = error instanceof LatchkeyError ? error.code : 'error';
    // Under the owner's uid, so the owner sees in GET /v1/user/audit that someone is guessing.
    const owner = await findOwner(deps.accounts, destination).catch(() => null);
    await deps.audit.record({ type: 'password_reset', uid: owner?.uid ?? null, sid: null, result: 'fail', reason: `code:${reason}`, context });
    throw error;
  }
  // Only the account that proved the address: one that merely typed it at registration must not be
  // handed to whoever reads that mailbox, nor have its password set by them.
  const user = await findOwner(deps.accounts, destination);
  if (user === null) {
    // No account proved this address: the code was never delivered to an owner, or it reached the
    // address's real owner for an account that only claims it.
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
    const changed: DomainEvent = { type: 'user.password_changed', data: { uid: user.uid, via: 'reset' } };
    if (await deps.accounts.updatePasswordHash(user.uid, expected, next, deps.clock.now(), [changed])) return;
    const current = await deps.accounts.findByUid(user.uid);
    if (current === null) throw wrongCode();
    expected = current.passwordHash;
  }
  throw new LatchkeyError('conflict', 'the password was changed meanwhile; try again', { field: 'new_password' });
}
