/**
 * Enrolling and using second factors (docs/design.md §4, second factors): a TOTP secret sealed at rest under the
 * configured keys (the IdP-token scheme, with rotation), and recovery codes kept as hashes. A TOTP
 * code counts once: its time step must be above the last one the account accepted, raised by one
 * conditional write, so a code replayed in the same step (or by a racing request) is refused.
 */
import { LatchkeyError, invalidCredentials, notFound } from '../../core/errors.ts';
import type { Clock } from '../../ports/clock.ts';
import type { Random } from '../../ports/random.ts';
import type { SecondFactorRepo } from '../../ports/second-factors.ts';
import type { AuditContext, AuditTrail } from '../../ops/audit.ts';
import type { TokenCipher } from '../oidc/token-cipher.ts';
import { matchingStep, newTotpSecret, totpEnrolment } from './totp.ts';
import { newRecoveryCodes, recoveryCodeHash } from './recovery-codes.ts';

export interface SecondFactorDeps {
  readonly factors: SecondFactorRepo;
  /** Null when no key is configured: TOTP cannot be offered (a secret is never stored in clear). */
  readonly cipher: TokenCipher | null;
  readonly clock: Clock;
  readonly random: Random;
  readonly audit: AuditTrail;
  /** The name authenticator apps show above the code. */
  readonly issuer: string;
}

export type SecondFactorMethod = 'totp' | 'recovery';

export interface SecondFactorStatus {
  readonly totp: boolean;
  readonly recovery_codes_left: number;
}

/** AAD of a TOTP secret: its account, so a sealed secret copied onto another row does not open. */
const totpAad = (uid: string): string => `mfa-totp:${uid}`;

function cipherOf(deps: SecondFactorDeps): TokenCipher {
  if (deps.cipher === null) throw notFound('TOTP on this server (no mfa.secret_key is configured)');
  return deps.cipher;
}

export async function secondFactorStatus(deps: SecondFactorDeps, uid: string): Promise<SecondFactorStatus> {
  const [factor, left] = await Promise.all([deps.factors.findTotp(uid), deps.factors.countRecoveryCodes(uid)]);
  return { totp: factor !== null && factor.enabledAt !== null, recovery_codes_left: left };
}

/** Draws a new secret, not active until enableTotp sees a right code from it. */
export async function setupTotp(deps: SecondFactorDeps, user: { uid: string; username: string }): Promise<{ secret: string; otpauth_url: string; qrcode_svg: string }> {
  const cipher = cipherOf(deps);
  const secret = newTotpSecret(deps.random);
  if (!(await deps.factors.setPendingTotp(user.uid, cipher.seal(secret, totpAad(user.uid)), deps.clock.now()))) {
    throw new LatchkeyError('conflict', 'TOTP is already enabled; disable it before setting up a new one');
  }
  const { otpauthUrl, qrcodeSvg } = await totpEnrolment(secret, deps.issuer, user.username);
  return { secret, otpauth_url: otpauthUrl, qrcode_svg: qrcodeSvg };
}

/** Enables the pending secret with a right code from it; answers the 10 recovery codes, shown this once. */
export async function enableTotp(deps: SecondFactorDeps, uid: string, code: string, context: AuditContext): Promise<string[]> {
  const cipher = cipherOf(deps);
  const factor = await deps.factors.findTotp(uid);
  if (factor === null || factor.enabledAt !== null) {
    throw new LatchkeyError('conflict', factor === null ? 'no TOTP secret is set up: call totp/setup first' : 'TOTP is already enabled');
  }
  const secret = cipher.open(factor.sealed, totpAad(uid));
  const step = secret === null ? null : matchingStep(secret, code, deps.clock.now());
  if (step === null) {
    await deps.audit.record({ type: 'mfa_enrol', uid, sid: null, result: 'fail', reason: 'totp:wrong_code', context });
    throw invalidCredentials();
  }
  const codes = newRecoveryCodes(deps.random);
  const hashes = codes.map((c) => recoveryCodeHash(uid, c) as string);
  // Conditional on the very sealed secret that was checked: a setup racing this call wins or loses whole.
  if (!(await deps.factors.enableTotp(uid, factor.sealed, step, hashes, deps.clock.now()))) {
    throw new LatchkeyError('conflict', 'the TOTP setup changed meanwhile; set it up again');
  }
  await deps.audit.record({ type: 'mfa_enrol', uid, sid: null, result: 'ok', reason: 'totp', context });
  return codes;
}

/**
 * Whether this code proves the account's second factor now, consuming it: a TOTP code's step, or
 * a recovery code. Wrong or reused codes answer false (the caller counts them against its budget).
 */
export async function useSecondFactor(deps: SecondFactorDeps, uid: string, method: SecondFactorMethod, code: string): Promise<boolean> {
  if (method === 'recovery') {
    const hash = recoveryCodeHash(uid, code);
    return hash !== null && deps.factors.useRecoveryCode(uid, hash);
  }
  const factor = await deps.factors.findTotp(uid);
  if (factor === null || factor.enabledAt === null || deps.cipher === null) return false;
  const secret = deps.cipher.open(factor.sealed, totpAad(uid));
  const step = secret === null ? null : matchingStep(secret, code, deps.clock.now());
  return step !== null && step > factor.lastStep && deps.factors.useTotpStep(uid, step);
}

/** New recovery codes; the old ones die in the same transaction. */
export async function regenerateRecoveryCodes(deps: SecondFactorDeps, uid: string, context: AuditContext): Promise<string[]> {
  const codes = newRecoveryCodes(deps.random);
  await deps.factors.replaceRecoveryCodes(uid, codes.map((c) => recoveryCodeHash(uid, c) as string));
  await deps.audit.record({ type: 'mfa_enrol', uid, sid: null, result: 'ok', reason: 'recovery_codes', context });
  return codes;
}

export async function disableTotp(deps: SecondFactorDeps, uid: string, context: AuditContext): Promise<boolean> {
  const removed = await deps.factors.removeTotp(uid);
  if (removed) await deps.audit.record({ type: 'mfa_remove', uid, sid: null, result: 'ok', reason: 'totp', context });
  return removed;
}
