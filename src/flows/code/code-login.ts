import type { User } from '../../ports/accounts.ts';
import { UniqueViolation } from '../../ports/accounts.ts';
import { LatchkeyError, accountDisabled } from '../../core/errors.ts';
import { phoneParts, type Destination } from '../../core/destinations.ts';
import { startSession, type LoginContext } from '../start-session.ts';
import type { LoginResponse } from '../login-response.ts';
import type { MfaChallenge } from '../mfa/second-step.ts';
import type { AuditContext } from '../../ops/audit.ts';
import { consumeCode, wrongCode } from './consume-code.ts';
import { addressOf, findOwner, registrationOpen, type CodeFlowDeps } from './deps.ts';

/**
 * POST /v1/user/code/login: consume a login (or register) code, then log the destination's account
 * in, creating it when registration by that channel is on. Only one of any number of concurrent
 * requests with the right code gets past consumeCode, so only one session (and one account) results.
 */
export async function codeLogin(
  deps: CodeFlowDeps,
  destination: Destination,
  guess: string,
  context: LoginContext,
): Promise<LoginResponse | MfaChallenge> {
  try {
    await consumeCode(deps.codes, ['login', 'register'], destination, guess);
  } catch (error) {
    deps.metrics.logins.inc({ method: 'code', result: 'fail' });
    const reason = error instanceof LatchkeyError ? error.code : 'error';
    // Under the owner's uid, so the owner sees in GET /v1/user/audit that someone is guessing.
    const owner = await findOwner(deps.accounts, destination).catch(() => null);
    await deps.audit.record({ type: 'login', uid: owner?.uid ?? null, sid: null, result: 'fail', reason: `code:${reason}`, context });
    throw error;
  }
  let user = await findOwner(deps.accounts, destination);
  if (user === null) {
    if (!registrationOpen(deps.settings, destination.channel)) {
      // No account proved this address: the code was never delivered (no holder), or it reached
      // the address's owner for an account that only claims it, which is not theirs. Either way
      // the same answer as a wrong code; with registration closed the claim stays where it is.
      deps.metrics.logins.inc({ method: 'code', result: 'fail' });
      await deps.audit.record({ type: 'login', uid: null, sid: null, result: 'fail', reason: 'code:no_account', context });
      throw wrongCode();
    }
    user = await createCodeAccount(deps, destination, context);
    await deps.audit.record({ type: 'register', uid: user.uid, sid: null, result: 'ok', reason: 'code', context });
  }
  if (user.status !== 'active') {
    deps.metrics.logins.inc({ method: 'code', result: 'disabled' });
    await deps.audit.record({ type: 'login', uid: user.uid, sid: null, result: 'fail', reason: 'account_disabled', context });
    throw accountDisabled();
  }
  return (await deps.secondStep.challenge(user, 'code', context)) ?? startSession(deps, user, 'code', context);
}

/**
 * A passwordless account owning the destination, proven by the code just consumed. The username is
 * random (it is public in IM apps, so it must not be the email or number); the user can set a
 * password later with pwdforget. An account that only claimed the address (typed it at
 * registration) loses the claim first: the address is its owner's, who just proved it.
 */
async function createCodeAccount(deps: CodeFlowDeps, destination: Destination, context: AuditContext): Promise<User> {
  const address = addressOf(destination);
  if (address === null) throw wrongCode();
  const phone = phoneParts(destination);
  for (let attempt = 0; attempt < 4; attempt++) {
    await releaseClaim(deps, destination, context);
    const username = `u${deps.random.bytes(8).toString('hex')}`;
    const uid = deps.random.bytes(16).toString('hex');
    try {
      return await deps.accounts.createUser({
        uid,
        username,
        name: username,
        email: address.channel === 'email' ? address.email : null,
        emailVerified: address.channel === 'email',
        zone: phone?.zone ?? null,
        phone: phone?.phone ?? null,
        phoneVerified: phone !== null,
        passwordHash: null,
      }, deps.clock.now(), [{ type: 'user.created', data: { uid, username, role: 'user', method: 'code', by: 'register' } }]);
    } catch (error) {
      if (!(error instanceof UniqueViolation)) throw error;
      if (error.field === 'username') continue;
      // A concurrent code login for the same address proved it first: log into that account.
      // Otherwise a registration claimed the address again since the release: release it again.
      const owner = await findOwner(deps.accounts, destination);
      if (owner !== null) return owner;
    }
  }
  throw new LatchkeyError('conflict', 'could not create the account; try again', { field: 'to' });
}

/** Drops an unverified claim on the destination, and tells the account that lost it (its audit trail). */
export async function releaseClaim(deps: Pick<CodeFlowDeps, 'accounts' | 'audit' | 'clock'>, destination: Destination, context: AuditContext): Promise<void> {
  const address = addressOf(destination);
  if (address === null) return;
  const released = await deps.accounts.releaseUnverified(address, deps.clock.now());
  if (released === null) return;
  await deps.audit.record({ type: 'address_release', uid: released, sid: null, result: 'ok', reason: destination.channel, context });
}
