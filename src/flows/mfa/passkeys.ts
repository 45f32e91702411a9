/**
 * Passkeys (WebAuthn, docs/design.md §4, second factors; docs/api.md §14): registering one from a
 * signed-in session, and signing in with one alone. `@simplewebauthn/server` checks the ceremonies
 * (challenge, origin, rp id hash, user presence and verification, signature, counter); this module
 * holds what it leaves to its caller:
 *
 * - Challenges live in the Kv for 5 minutes and are taken by GETDEL, so each is used once. A
 *   registration's is stored under the session's sid (another session cannot finish it; a second
 *   `options` call replaces it). A login's is stored under its own hash and bound to nothing else:
 *   the login is usernameless (discoverable credentials, `allowCredentials` empty), so the server
 *   learns the account only from the credential id in the answer.
 * - User verification is `required`: a passkey login is a whole login, with no second step, so the
 *   authenticator must have checked its owner (PIN, biometrics), not only that someone touched it.
 * - The signature counter is raised by a conditional write (PasskeyRepo.use): a login whose counter
 *   did not rise above the stored one (a cloned authenticator, or a racing use of the same) fails.
 *   Authenticators that keep no counter (always 0) are accepted, as WebAuthn allows; the one-time
 *   challenge is what stops a replay of their assertions.
 */
import { createHash } from 'node:crypto';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { LatchkeyError, accountDisabled, invalidCredentials, notFound } from '../../core/errors.ts';
import type { Session } from '../../core/sessions/record.ts';
import type { User } from '../../ports/accounts.ts';
import type { Kv } from '../../ports/kv.ts';
import type { Passkey, PasskeyRepo } from '../../ports/passkeys.ts';
import type { Random } from '../../ports/random.ts';
import type { AuditContext } from '../../ops/audit.ts';
import type { LoginResponse } from '../login-response.ts';
import { startSession, type LoginContext, type StartSessionDeps } from '../start-session.ts';

export const CHALLENGE_TTL_MS = 5 * 60_000;
/** Enough for every device a person owns; a bound on what one stolen, stepped-up session can add. */
export const MAX_PASSKEYS = 20;
/** ES256, EdDSA, RS256: what platform authenticators and security keys make. */
const ALGORITHMS = [-7, -8, -257];

/** The relying party: passkeys.rp_id, rp_name, and the origins (known once the server listens). */
export interface RelyingParty {
  readonly id: string;
  readonly name: string;
  origins(): string[];
}

export interface PasskeyDeps extends StartSessionDeps {
  readonly kv: Kv;
  readonly random: Random;
  readonly passkeys: { readonly repo: PasskeyRepo; readonly rp: RelyingParty };
}

export interface PasskeyView {
  readonly id: string;
  readonly name: string;
  readonly transports: readonly string[];
  readonly created_at: number;
  readonly last_used_at: number | null;
}

const tooManyPasskeys = (): LatchkeyError => new LatchkeyError('conflict', `an account holds at most ${MAX_PASSKEYS} passkeys; remove one first`);
const registerKey = (sid: string): string => `passkey:register:${sid}`;
const loginKey = (challenge: string): string => `passkey:login:${createHash('sha256').update(challenge).digest('base64url')}`;
const userHandle = (uid: string): string => Buffer.from(uid, 'utf8').toString('base64url');
/** 32 random bytes; the options carry them base64url, as clientDataJSON will. */
const newChallenge = (random: Random): Uint8Array<ArrayBuffer> => new Uint8Array(random.bytes(32));

export function passkeyView(passkey: Passkey): PasskeyView {
  return { id: passkey.id, name: passkey.name, transports: passkey.transports, created_at: passkey.createdAt, last_used_at: passkey.lastUsedAt };
}

/** POST /v1/user/passkeys/register/options: what the browser's `navigator.credentials.create` takes. */
export async function registrationOptions(deps: PasskeyDeps, session: Session, user: User): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const existing = await deps.passkeys.repo.list(user.uid);
  // Early, so the browser is not asked to make a passkey that cannot be stored; the insert checks again.
  if (existing.length >= MAX_PASSKEYS) throw tooManyPasskeys();
  const challenge = newChallenge(deps.random);
  const options = await generateRegistrationOptions({
    rpName: deps.passkeys.rp.name,
    rpID: deps.passkeys.rp.id,
    userName: user.username,
    userDisplayName: user.name,
    userID: new Uint8Array(Buffer.from(user.uid, 'utf8')),
    challenge,
    timeout: CHALLENGE_TTL_MS,
    attestationType: 'none',
    // The browser refuses to make a second passkey on an authenticator that already holds one.
    excludeCredentials: existing.map((p) => ({ id: p.id, transports: [...p.transports] })),
    authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'required' },
    supportedAlgorithmIDs: ALGORITHMS,
  });
  await deps.kv.set(registerKey(session.sid), options.challenge, { ttlMs: CHALLENGE_TTL_MS });
  return options;
}

/** POST /v1/user/passkeys/register/verify: stores the new passkey if the browser's answer holds up. */
export async function verifyRegistration(
  deps: PasskeyDeps, session: Session, response: RegistrationResponseJSON, name: string | undefined, context: AuditContext,
): Promise<{ id: string; name: string }> {
  const challenge = await deps.kv.getdel(registerKey(session.sid));
  if (challenge === null) throw new LatchkeyError('expired', 'no passkey registration is pending for this session (or it expired); ask for options again');
  const refuse = async (reason: string): Promise<never> => {
    deps.metrics.mfa.inc({ event: 'enrol', method: 'passkey', result: 'fail' });
    await deps.audit.record({ type: 'passkey_register', uid: session.uid, sid: session.sid, result: 'fail', reason, context });
    throw new LatchkeyError('invalid_credentials', 'the passkey could not be verified');
  };
  let verified: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
  try {
    verified = await verifyRegistrationResponse({
      response,
      expectedChallenge: challenge,
      expectedOrigin: deps.passkeys.rp.origins(),
      expectedRPID: deps.passkeys.rp.id,
      requireUserVerification: true,
      supportedAlgorithmIDs: ALGORITHMS,
    });
  } catch {
    return refuse('passkey:invalid');
  }
  if (!verified.verified) return refuse('passkey:invalid');
  const { credential } = verified.registrationInfo;
  const passkey: Passkey = {
    id: credential.id,
    uid: session.uid,
    publicKey: Buffer.from(credential.publicKey).toString('base64url'),
    counter: credential.counter,
    transports: (credential.transports ?? []).slice(0, 8),
    name: name ?? 'Passkey',
    createdAt: deps.clock.now(),
    lastUsedAt: null,
  };
  const added = await deps.passkeys.repo.add(passkey, MAX_PASSKEYS);
  if (added === 'full') throw tooManyPasskeys();
  if (added === 'taken') throw new LatchkeyError('conflict', 'this passkey is already registered');
  deps.metrics.mfa.inc({ event: 'enrol', method: 'passkey', result: 'ok' });
  await deps.audit.record({ type: 'passkey_register', uid: session.uid, sid: session.sid, result: 'ok', reason: 'passkey', context });
  return { id: passkey.id, name: passkey.name };
}

/** POST /v1/user/passkeys/login/options: a fresh challenge for `navigator.credentials.get`. */
export async function loginOptions(deps: PasskeyDeps): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const options = await generateAuthenticationOptions({
    rpID: deps.passkeys.rp.id, challenge: newChallenge(deps.random), allowCredentials: [], userVerification: 'required', timeout: CHALLENGE_TTL_MS,
  });
  await deps.kv.set(loginKey(options.challenge), '1', { ttlMs: CHALLENGE_TTL_MS });
  return options;
}

/** The challenge the browser signed, as it wrote it in clientDataJSON, or null. */
function signedChallenge(response: AuthenticationResponseJSON): string | null {
  try {
    const client: unknown = JSON.parse(Buffer.from(response.response.clientDataJSON, 'base64url').toString('utf8'));
    const challenge = (client as { challenge?: unknown } | null)?.challenge;
    return typeof challenge === 'string' && /^[A-Za-z0-9_-]{16,128}$/.test(challenge) ? challenge : null;
  } catch {
    return null;
  }
}

/**
 * POST /v1/user/passkeys/login/verify: a whole login with a passkey (method `passkey`). The
 * challenge is taken before anything is checked, so a failed or replayed answer burns it.
 */
export async function verifyPasskeyLogin(deps: PasskeyDeps, response: AuthenticationResponseJSON, context: LoginContext): Promise<LoginResponse> {
  const fail = async (uid: string | null, reason: string): Promise<never> => {
    deps.metrics.logins.inc({ method: 'passkey', result: 'fail' });
    deps.metrics.mfa.inc({ event: 'verify', method: 'passkey', result: 'fail' });
    await deps.audit.record({ type: 'login', uid, sid: null, result: 'fail', reason, context });
    throw invalidCredentials();
  };
  const challenge = signedChallenge(response);
  if (challenge === null || (await deps.kv.getdel(loginKey(challenge))) === null) {
    deps.metrics.logins.inc({ method: 'passkey', result: 'fail' });
    await deps.audit.record({ type: 'login', uid: null, sid: null, result: 'fail', reason: 'passkey:challenge', context });
    throw new LatchkeyError('expired', 'this passkey sign-in has expired or was already used; start again');
  }
  const passkey = await deps.passkeys.repo.find(response.id);
  if (passkey === null) return fail(null, 'passkey:unknown_credential');
  // The account the authenticator says it signs for must be the passkey's own.
  const handle = response.response.userHandle;
  if (handle !== undefined && handle !== userHandle(passkey.uid)) return fail(passkey.uid, 'passkey:user_handle');
  let newCounter: number;
  try {
    const result = await verifyAuthenticationResponse({
      response,
      expectedChallenge: challenge,
      expectedOrigin: deps.passkeys.rp.origins(),
      expectedRPID: deps.passkeys.rp.id,
      credential: { id: passkey.id, publicKey: new Uint8Array(Buffer.from(passkey.publicKey, 'base64url')), counter: passkey.counter, transports: [...passkey.transports] },
      requireUserVerification: true,
    });
    if (!result.verified) return fail(passkey.uid, 'passkey:invalid');
    newCounter = result.authenticationInfo.newCounter;
  } catch {
    return fail(passkey.uid, 'passkey:invalid');
  }
  if (!(await deps.passkeys.repo.use(passkey.id, newCounter, deps.clock.now()))) return fail(passkey.uid, 'passkey:counter');
  const user = await deps.accounts.findByUid(passkey.uid);
  if (user === null) return fail(passkey.uid, 'invalid_credentials');
  if (user.status !== 'active') {
    deps.metrics.logins.inc({ method: 'passkey', result: 'disabled' });
    await deps.audit.record({ type: 'login', uid: user.uid, sid: null, result: 'fail', reason: 'account_disabled', context });
    throw accountDisabled();
  }
  deps.metrics.mfa.inc({ event: 'verify', method: 'passkey', result: 'ok' });
  const login = await startSession(deps, user, 'passkey', context, undefined, passkey.id);
  await requireKeptPasskey(deps, passkey, login, context);
  return login;
}

/**
 * A removal that lands between this login's checks and its session joining the index ends the
 * sessions it can see, and this one may not be among them. So the login looks for its passkey
 * again once its session is indexed and undoes itself if it is gone: the removal ends the passkey
 * first and then its sessions, so whichever runs second sees the other (docs/design.md §3.2,
 * invariant 5). An account database that does not answer here undoes the login too: nobody may
 * hold a session of a passkey that could be gone.
 */
async function requireKeptPasskey(deps: PasskeyDeps, passkey: Passkey, login: LoginResponse, context: LoginContext): Promise<void> {
  let kept: boolean;
  try {
    kept = (await deps.passkeys.repo.find(passkey.id))?.uid === passkey.uid;
  } catch (error) {
    await deps.sessions.revoke(passkey.uid, login.sid, 'aborted').catch(() => false);
    throw error;
  }
  if (kept) return;
  await deps.sessions.revoke(passkey.uid, login.sid, 'passkey_removed');
  await deps.audit.record({ type: 'login', uid: passkey.uid, sid: login.sid, result: 'fail', reason: 'passkey:removed', context });
  throw invalidCredentials();
}

export async function listPasskeys(deps: Pick<PasskeyDeps, 'passkeys'>, uid: string): Promise<PasskeyView[]> {
  return (await deps.passkeys.repo.list(uid)).map(passkeyView);
}

export async function renamePasskey(deps: Pick<PasskeyDeps, 'passkeys'>, uid: string, id: string, name: string): Promise<void> {
  if (!(await deps.passkeys.repo.rename(uid, id, name))) throw notFound('passkey');
}

/**
 * DELETE /v1/user/passkeys/:id: removes the passkey, then ends every session it signed in, this one
 * included if it was one (its device may be the one that was lost). Answers how many ended. The
 * order is half of the race with a login in flight (requireKeptPasskey is the other half). A call
 * whose sweep failed part-way (503) is retried by asking again: the passkey is gone by then, but its
 * sessions are still swept, and only a call that found neither answers 404.
 */
export async function removePasskey(
  deps: Pick<PasskeyDeps, 'passkeys' | 'sessions' | 'audit' | 'metrics'>, session: Session, id: string, context: AuditContext,
): Promise<number> {
  const removed = await deps.passkeys.repo.remove(session.uid, id);
  const revoked = await deps.sessions.revokePasskey(session.uid, id);
  if (!removed && revoked === 0) throw notFound('passkey');
  if (removed) {
    deps.metrics.mfa.inc({ event: 'remove', method: 'passkey', result: 'ok' });
    await deps.audit.record({ type: 'passkey_remove', uid: session.uid, sid: session.sid, result: 'ok', reason: 'passkey', context });
  }
  if (revoked > 0) await deps.audit.record({ type: 'revoke', uid: session.uid, sid: session.sid, result: 'ok', reason: `passkey:${revoked}`, context });
  return revoked;
}
