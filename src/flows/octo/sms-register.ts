/**
 * octo-server's registration by SMS code (`compat.octo`, docs/octo-compat.md §2): the apps send
 * `POST /v1/user/register {zone, phone, code, password, invite_code, device}` after
 * `sms/registercode`. The code proves the number, so the account is created with it proven and the
 * password set, then logged in. What octo-server told anyone (whether a number has an account) is
 * told only to the holder of a right code.
 */
import type { User } from '../../ports/accounts.ts';
import { UniqueViolation } from '../../ports/accounts.ts';
import { LatchkeyError, invalidRequest } from '../../core/errors.ts';
import { checkPasswordPolicy } from '../../core/passwords.ts';
import { phoneParts, type Destination } from '../../core/destinations.ts';
import type { LoginResponse } from '../login-response.ts';
import { startSession, type LoginContext } from '../start-session.ts';
import { consumeCode } from '../code/consume-code.ts';
import { releaseClaim } from '../code/code-login.ts';
import { findOwner, registrationOpen, type CodeFlowDeps } from '../code/deps.ts';

export async function smsRegister(
  deps: CodeFlowDeps,
  destination: Destination,
  guess: string,
  password: string,
  context: LoginContext,
): Promise<LoginResponse> {
  const phone = phoneParts(destination);
  if (phone === null) throw invalidRequest('phone', 'zone and phone must be digits');
  if (!registrationOpen(deps.settings, 'sms')) throw new LatchkeyError('forbidden', 'registration by SMS code is disabled');
  // Before consuming: a refused password must not cost the user their code.
  const problem = checkPasswordPolicy(password, [destination.to, phone.phone]);
  if (problem !== null) throw invalidRequest('password', problem);
  try {
    await consumeCode(deps.codes, ['register'], destination, guess);
  } catch (error) {
    const reason = error instanceof LatchkeyError ? error.code : 'error';
    await deps.audit.record({ type: 'register', uid: null, sid: null, result: 'fail', reason: `code:${reason}`, context });
    throw error;
  }
  if ((await findOwner(deps.accounts, destination)) !== null) {
    throw new LatchkeyError('conflict', 'this phone number already has an account', { field: 'phone' });
  }
  const passwordHash = await deps.hasher.hash(password);
  const user = await createAccount(deps, destination, phone, passwordHash, context);
  await deps.audit.record({ type: 'register', uid: user.uid, sid: null, result: 'ok', reason: 'sms', context });
  return startSession(deps, user, 'register', context);
}

/**
 * An account owning the number, with a random username (it is public in IM apps: not the number).
 * An account that only claimed the number (typed it at registration) loses the claim first.
 */
async function createAccount(
  deps: CodeFlowDeps,
  destination: Destination,
  phone: { zone: string; phone: string },
  passwordHash: string,
  context: LoginContext,
): Promise<User> {
  for (let attempt = 0; attempt < 4; attempt++) {
    await releaseClaim(deps, destination, context);
    const username = `u${deps.random.bytes(8).toString('hex')}`;
    try {
      return await deps.accounts.createUser({
        uid: deps.random.bytes(16).toString('hex'),
        username,
        name: username,
        email: null,
        zone: phone.zone,
        phone: phone.phone,
        phoneVerified: true,
        passwordHash,
      }, deps.clock.now());
    } catch (error) {
      if (!(error instanceof UniqueViolation)) throw error;
      if (error.field === 'username') continue;
      // Proven by a concurrent registration with another code for the same number.
      if ((await findOwner(deps.accounts, destination)) !== null) {
        throw new LatchkeyError('conflict', 'this phone number already has an account', { field: 'phone' });
      }
    }
  }
  throw new LatchkeyError('conflict', 'could not create the account; try again', { field: 'phone' });
}
