/**
 * TOTP (RFC 6238) as authenticator apps read it: SHA-1, 6 digits, 30-second steps, a 160-bit
 * secret. A code is accepted in its own step and one step either side (clock skew); which step
 * matched is returned, so the caller can refuse it a second time (docs/design.md §4, second factors).
 */
import { Secret, TOTP } from 'otpauth';
import { toString as renderQrCode } from 'qrcode';
import type { Random } from '../../ports/random.ts';

export const TOTP_PERIOD_SECONDS = 30;
const SECRET_BYTES = 20;
const SKEW_STEPS = 1;

/** A fresh base32 secret from the Random port. */
export function newTotpSecret(random: Random): string {
  return new Secret({ buffer: new Uint8Array(random.bytes(SECRET_BYTES)).buffer }).base32;
}

function totp(secret: string, issuer: string, label: string): TOTP {
  return new TOTP({ issuer, label, secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: TOTP_PERIOD_SECONDS });
}

/** The `otpauth://totp/…` URL an authenticator app scans, and its QR as SVG. */
export async function totpEnrolment(secret: string, issuer: string, label: string): Promise<{ otpauthUrl: string; qrcodeSvg: string }> {
  const otpauthUrl = totp(secret, issuer, label).toString();
  return { otpauthUrl, qrcodeSvg: await renderQrCode(otpauthUrl, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 }) };
}

/** The time step a 6-digit code belongs to (within ±1 step of `nowMs`), or null when it is wrong. */
export function matchingStep(secret: string, code: string, nowMs: number): number | null {
  if (!/^[0-9]{6}$/.test(code)) return null;
  const delta = totp(secret, '', '').validate({ token: code, timestamp: nowMs, window: SKEW_STEPS });
  return delta === null ? null : Math.floor(nowMs / 1000 / TOTP_PERIOD_SECONDS) + delta;
}

/** The code of a step (tests and the console's own checks use it). */
export function totpCodeAt(secret: string, nowMs: number): string {
  return totp(secret, '', '').generate({ timestamp: nowMs });
}
