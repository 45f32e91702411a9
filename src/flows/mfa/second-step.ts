/**
 * The second step of a login (docs/design.md §4, second factors). A password or code login whose
 * account has a second factor gets a ticket instead of a session; `POST /v1/user/mfa/verify` turns
 * the ticket and a code into the session the first step would have made. Each try of a code is
 * reserved before it is checked, against the ticket (5) and against the account's second-factor
 * budget (the login throttle, under a subject of its own: a right password must not clear the
 * failures of the second factor, or knowing the password would buy fresh guesses).
 */
import type { User } from '../../ports/accounts.ts';
import { LatchkeyError, accountDisabled, invalidCredentials } from '../../core/errors.ts';
import { accountSubject, type LoginThrottle } from '../../core/guards.ts';
import type { LoginMethod } from '../../core/sessions/record.ts';
import type { AuditContext } from '../../ops/audit.ts';
import type { LoginResponse } from '../login-response.ts';
import { startSession, type LoginContext, type StartSessionDeps } from '../start-session.ts';
import { useSecondFactor, type SecondFactorDeps, type SecondFactorMethod } from './second-factors.ts';
import { passwordStamp, type MfaTickets, type PendingLogin } from './ticket.ts';

export interface SecondStepDeps extends StartSessionDeps {
  readonly secondFactors: SecondFactorDeps;
  readonly mfaTickets: MfaTickets;
  readonly throttle: LoginThrottle;
}

export interface MfaChallenge {
  readonly mfa_required: true;
  readonly mfa_ticket: string;
  readonly methods: readonly SecondFactorMethod[];
}

const secondFactorBudget = (uid: string) => accountSubject(`second-factor:${uid}`);
const deadTicket = (): LatchkeyError => new LatchkeyError('expired', 'this sign-in has expired or was already completed; sign in again');

/**
 * What a first-factor login (password, one-time code) asks after the credentials were right: a
 * challenge if the account has a second factor, else null (log in now). Part of the flows' deps,
 * not optional, so no first-factor login can be built without it.
 */
export interface SecondStepGate {
  challenge(user: User, method: LoginMethod, context: LoginContext): Promise<MfaChallenge | null>;
}

export function secondStepGate(deps: SecondStepDeps): SecondStepGate {
  return {
    async challenge(user, method, context) {
      const totp = await deps.secondFactors.factors.findTotp(user.uid);
      if (totp === null || totp.enabledAt === null) return null;
      const ticket = await deps.mfaTickets.issue({
        uid: user.uid, method, flag: context.flag, device: context.device, password_stamp: passwordStamp(user.passwordHash),
      });
      await deps.audit.record({ type: 'login', uid: user.uid, sid: null, result: 'ok', reason: `${method}:mfa_required`, context });
      return { mfa_required: true, mfa_ticket: ticket, methods: ['totp', 'recovery'] };
    },
  };
}

export interface SecondStepInput {
  readonly ticket: string;
  readonly method: SecondFactorMethod;
  readonly code: string;
}

/** POST /v1/user/mfa/verify: the code of the ticket's account, then the session its login asked for. */
export async function verifySecondStep(deps: SecondStepDeps, input: SecondStepInput, context: AuditContext): Promise<LoginResponse> {
  const pending = await deps.mfaTickets.peek(input.ticket);
  if (pending === null || !(await deps.mfaTickets.reserveTry(input.ticket))) throw deadTicket();
  if (!(await proveSecondFactor(deps, pending.uid, input.method, input.code, context.ip))) {
    deps.metrics.logins.inc({ method: pending.method, result: 'fail' });
    deps.metrics.mfa.inc({ event: 'verify', method: input.method, result: 'fail' });
    await deps.audit.record({ type: 'mfa', uid: pending.uid, sid: null, result: 'fail', reason: `${input.method}:wrong_code`, context });
    throw new LatchkeyError('invalid_credentials', 'wrong code');
  }
  // Of parallel verifications with right codes (two recovery codes), one takes the ticket.
  if ((await deps.mfaTickets.take(input.ticket)) === null) throw deadTicket();
  const user = await standingAccount(deps, pending, null, context);
  deps.metrics.mfa.inc({ event: 'verify', method: input.method, result: 'ok' });
  await deps.audit.record({ type: 'mfa', uid: user.uid, sid: null, result: 'ok', reason: input.method, context });
  const first = pending.method === 'code' ? 'code' : pending.method === 'qr' ? 'qr' : 'pwd';
  const amr = [first, input.method === 'totp' ? 'otp' : 'recovery'];
  const response = await startSession(deps, user, pending.method, { ...context, flag: pending.flag, device: pending.device }, amr);
  // A ban, reset or change that swept the sessions before this one joined the index cannot see
  // it: look again once it is indexed (docs/design.md §3.2, invariant 5).
  await standingAccount(deps, pending, response.sid, context);
  return response;
}

/**
 * The ticket's account while it is active and its password is the one the first step saw; else
 * the login is refused (and its session, if one was issued, ended).
 */
async function standingAccount(deps: SecondStepDeps, pending: PendingLogin, issuedSid: string | null, context: AuditContext): Promise<User> {
  const user = await deps.accounts.findByUid(pending.uid);
  const banned = user !== null && user.status !== 'active';
  if (user !== null && !banned && passwordStamp(user.passwordHash) === pending.password_stamp) return user;
  if (issuedSid !== null) await deps.sessions.revoke(pending.uid, issuedSid, banned ? 'ban' : 'password');
  await deps.audit.record({ type: 'login', uid: pending.uid, sid: issuedSid, result: 'fail', reason: banned ? 'account_disabled' : 'password_changed', context });
  if (banned) throw accountDisabled();
  if (user === null) throw invalidCredentials();
  throw new LatchkeyError('expired', 'the password changed since this sign-in began; sign in again');
}

/**
 * Whether the code proves the account's second factor, consuming it, with the try reserved against
 * the account's second-factor budget first. Used by the second step of a login and by step-up.
 */
export async function proveSecondFactor(
  deps: Pick<SecondStepDeps, 'secondFactors' | 'throttle'>, uid: string, method: SecondFactorMethod, code: string, ip: string,
): Promise<boolean> {
  const budget = secondFactorBudget(uid);
  await deps.throttle.reserve(budget, ip);
  let proven: boolean;
  try {
    proven = await useSecondFactor(deps.secondFactors, uid, method, code);
  } catch (error) {
    await deps.throttle.released(budget, ip);
    throw error;
  }
  if (proven) await deps.throttle.succeeded(budget, ip);
  return proven;
}
