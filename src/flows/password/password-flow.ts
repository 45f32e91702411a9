import type { AccountRepo, Role, User } from '../../ports/accounts.ts';
import { UniqueViolation } from '../../ports/accounts.ts';
import type { Random } from '../../ports/random.ts';
import type { Clock } from '../../ports/clock.ts';
import type { DomainEvent, EventSink } from '../../ports/events.ts';
import type { SessionService } from '../../core/sessions/service.ts';
import type { Session } from '../../core/sessions/record.ts';
import { accountSubject, unknownSubject, type LoginThrottle, type ThrottleSubject } from '../../core/guards.ts';
import type { PasswordHasher, PasswordVerdict } from '../../ports/password-hasher.ts';
import { checkPasswordPolicy } from '../../core/passwords.ts';
import { normalizeUsername, usernameProblem } from '../../core/usernames.ts';
import { LatchkeyError, accountDisabled, invalidCredentials, invalidRequest } from '../../core/errors.ts';
import type { AuditContext, AuditTrail } from '../../ops/audit.ts';
import type { Metrics } from '../../ops/metrics.ts';
import type { LoginResponse } from '../login-response.ts';
import type { MfaChallenge, SecondStepGate } from '../mfa/second-step.ts';
import { startSession, type LoginContext } from '../start-session.ts';

export interface PasswordFlowDeps {
  readonly accounts: AccountRepo;
  readonly events: EventSink;
  readonly sessions: SessionService;
  readonly hasher: PasswordHasher;
  readonly throttle: LoginThrottle;
  readonly audit: AuditTrail;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly random: Random;
  /** Asked once the password was right: an account with a second factor gets a ticket, not a session. */
  readonly secondStep: SecondStepGate;
}

export interface RegisterInput {
  readonly username: string;
  readonly password: string;
  readonly name?: string | undefined;
  readonly email?: string | undefined;
  readonly zone?: string | undefined;
  readonly phone?: string | undefined;
}

/** Creates an account with a password; conflict when username, email or phone is taken. */
export async function createAccount(
  deps: Pick<PasswordFlowDeps, 'accounts' | 'hasher' | 'clock' | 'random'>,
  input: RegisterInput,
  role: Role = 'user',
  by: 'register' | 'cli' = 'register',
): Promise<User> {
  const username = acceptableUsername(input.username);
  requirePolicy(input.password, 'password', [username, input.name ?? '', input.email ?? '']);
  const passwordHash = await deps.hasher.hash(input.password);
  const uid = deps.random.bytes(16).toString('hex');
  try {
    return await deps.accounts.createUser(
      {
        uid,
        // The email and phone are stored unverified: anyone can type anyone's address here. They
        // become the account's (for code login, reset, SSO linking) once a code sent there is
        // entered (POST /v1/user/verify_address).
        username,
        name: input.name ?? username,
        email: input.email ?? null,
        zone: input.phone === undefined ? null : (input.zone ?? '86'),
        phone: input.phone ?? null,
        passwordHash,
        role,
      },
      deps.clock.now(),
      [{ type: 'user.created', data: { uid, username, role, method: 'password', by } }],
    );
  } catch (error) {
    if (error instanceof UniqueViolation) {
      throw new LatchkeyError('conflict', `${error.field} is already taken`, { field: error.field });
    }
    throw error;
  }
}

const USERNAME = /^\p{L}[\p{L}\p{N}_.-]{1,31}$/u;

/**
 * The username as stored: NFKC, so `ａｌｉｃｅ` registers (and collides) as `alice`; refused when
 * normalising left it outside the allowed shape, or when it mixes scripts (`аlice`, Cyrillic `а`).
 */
function acceptableUsername(raw: string): string {
  const username = normalizeUsername(raw);
  if (!USERNAME.test(username)) {
    throw invalidRequest('username', 'username must be 2 to 32 letters, digits, `_`, `.` or `-`, starting with a letter');
  }
  const problem = usernameProblem(username);
  if (problem !== null) throw invalidRequest('username', problem);
  return username;
}

/** Registers an account and logs it in on the calling device. */
export async function register(deps: PasswordFlowDeps, input: RegisterInput, context: LoginContext): Promise<LoginResponse> {
  const user = await createAccount(deps, input);
  await deps.audit.record({ type: 'register', uid: user.uid, sid: null, result: 'ok', reason: null, context });
  return startSession(deps, user, 'register', context);
}

/**
 * Password login. The identifier is a username, an email, or `zone-phone`. Unknown user and wrong
 * password give the same answer after the same hashing work.
 */
export async function passwordLogin(
  deps: PasswordFlowDeps,
  identifier: string,
  password: string,
  context: LoginContext,
): Promise<LoginResponse | MfaChallenge> {
  const user = await findByIdentifier(deps.accounts, identifier);
  const subject = user === null ? unknownSubject(identifier) : accountSubject(user.uid);
  const verdict = await throttledVerify(deps, subject, context.ip, user?.passwordHash ?? null, password);
  if (user === null || !verdict.ok) {
    deps.metrics.logins.inc({ method: 'password', result: 'fail' });
    await deps.audit.record({
      type: 'login', uid: user?.uid ?? null, sid: null, result: 'fail', reason: 'invalid_credentials', context,
    });
    throw invalidCredentials();
  }
  if (user.status !== 'active') {
    deps.metrics.logins.inc({ method: 'password', result: 'disabled' });
    await deps.audit.record({ type: 'login', uid: user.uid, sid: null, result: 'fail', reason: 'account_disabled', context });
    throw accountDisabled();
  }
  let verifiedHash = user.passwordHash;
  if (verdict.needsRehash && verifiedHash !== null) {
    // Imported bcrypt (or weaker argon2) hashes move to the current parameters on a good login;
    // compare-and-set, so a password changed meanwhile is never overwritten with the old one.
    // A rehash refused by a full hashing queue waits for the next login: the password was right.
    const rehashed = await deps.hasher.hash(password).catch(unlessBusy);
    if (rehashed !== null && (await deps.accounts.updatePasswordHash(user.uid, verifiedHash, rehashed, deps.clock.now()))) {
      verifiedHash = rehashed;
    }
  }
  const challenge = await deps.secondStep.challenge(user, 'password', context);
  if (challenge !== null) return challenge;
  const response = await startSession(deps, user, 'password', context);
  await requireUnchangedPassword(deps, user.uid, verifiedHash, response, context);
  return response;
}

/**
 * Checks a password against the account's budget (docs/design.md §3.5: the attempt is reserved before the
 * work it limits). A login and a password change spend the same budget, so a stolen session cannot
 * guess the current password faster than a login could.
 */
async function throttledVerify(
  deps: Pick<PasswordFlowDeps, 'throttle' | 'hasher'>,
  subject: ThrottleSubject,
  ip: string,
  stored: string | null,
  password: string,
): Promise<PasswordVerdict> {
  await deps.throttle.reserve(subject, ip);
  let verdict: PasswordVerdict;
  try {
    verdict = await deps.hasher.verify(stored, password);
  } catch (error) {
    await deps.throttle.released(subject, ip);
    throw error;
  }
  if (verdict.ok) await deps.throttle.succeeded(subject, ip);
  return verdict;
}

function unlessBusy(error: unknown): null {
  if (error instanceof LatchkeyError && error.code === 'upstream_unavailable') return null;
  throw error;
}

/**
 * A password reset or change that lands between checking the password and issuing the session
 * sweeps the sessions it can see, and this one may not have joined the index yet. So the login
 * looks again once its session is indexed — the same two-sided check that makes a ban total
 * (docs/design.md §3.2, invariant 5): whichever runs second sees the other.
 */
async function requireUnchangedPassword(
  deps: PasswordFlowDeps,
  uid: string,
  verifiedHash: string | null,
  response: LoginResponse,
  context: LoginContext,
): Promise<void> {
  const current = await deps.accounts.findByUid(uid);
  if (current !== null && current.passwordHash === verifiedHash && current.status === 'active') return;
  // A ban that landed meanwhile is told as a ban (403), as it is to a login that starts after it.
  const banned = current !== null && current.status !== 'active';
  await deps.sessions.revoke(uid, response.sid, banned ? 'ban' : 'password');
  await deps.audit.record({ type: 'login', uid, sid: response.sid, result: 'fail', reason: banned ? 'account_disabled' : 'password_changed', context });
  throw banned ? accountDisabled() : invalidCredentials();
}

/**
 * A signed-in user shows their password again (step-up): checked against the account's login
 * budget, like a login or a password change. Throws invalid_credentials when it is wrong.
 */
export async function proveOwnPassword(deps: PasswordFlowDeps, session: Session, password: string, context: AuditContext): Promise<void> {
  const user = await deps.accounts.findByUid(session.uid);
  const verdict = await throttledVerify(deps, accountSubject(session.uid), context.ip, user?.passwordHash ?? null, password);
  if (user === null || !verdict.ok) {
    await deps.audit.record({ type: 'step_up', uid: session.uid, sid: session.sid, result: 'fail', reason: 'password', context });
    throw invalidCredentials();
  }
}

export interface ChangePasswordInput {
  readonly password: string;
  readonly newPassword: string;
  readonly revokeOtherSessions: boolean;
}

export async function changePassword(
  deps: PasswordFlowDeps,
  session: Session,
  input: ChangePasswordInput,
  context: AuditContext,
): Promise<void> {
  const user = await deps.accounts.findByUid(session.uid);
  requirePolicy(input.newPassword, 'new_password', user === null ? [] : [user.username, user.name, user.email ?? '']);
  const verdict = await throttledVerify(deps, accountSubject(session.uid), context.ip, user?.passwordHash ?? null, input.password);
  if (user === null || !verdict.ok) {
    await deps.audit.record({
      type: 'password_change', uid: session.uid, sid: session.sid, result: 'fail', reason: 'invalid_credentials', context,
    });
    throw invalidCredentials();
  }
  const next = await deps.hasher.hash(input.newPassword);
  const changed: DomainEvent = { type: 'user.password_changed', data: { uid: user.uid, via: 'change', sid: session.sid } };
  if (!(await deps.accounts.updatePasswordHash(user.uid, user.passwordHash, next, deps.clock.now(), [changed]))) {
    throw new LatchkeyError('conflict', 'the password was changed meanwhile; try again', { field: 'password' });
  }
  if (input.revokeOtherSessions) await deps.sessions.revokeOthers(user.uid, session.sid, 'password_changed');
  await deps.audit.record({ type: 'password_change', uid: user.uid, sid: session.sid, result: 'ok', reason: null, context });
}

async function findByIdentifier(accounts: AccountRepo, identifier: string): Promise<User | null> {
  if (identifier.includes('@')) return accounts.findByEmail(identifier);
  const phone = /^(\d{1,6})-(\d{4,20})$/.exec(identifier);
  if (phone?.[1] !== undefined && phone[2] !== undefined) {
    const byPhone = await accounts.findByPhone(phone[1], phone[2]);
    if (byPhone !== null) return byPhone;
  }
  return accounts.findByUsername(identifier);
}

function requirePolicy(password: string, field: string, context: readonly string[]): void {
  const problem = checkPasswordPolicy(password, context);
  if (problem !== null) throw invalidRequest(field, problem);
}
