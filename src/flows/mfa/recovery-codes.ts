/**
 * Recovery codes: 10 single-use codes shown once, stored as hashes. Each is 10 characters of
 * Crockford's base32 (no I, L, O, U: 50 bits), written `xxxxx-xxxxx`; what the user types is
 * normalised (case, spaces, dashes, o → 0, i and l → 1) before hashing. 50 random bits behind a per-account throttle
 * need no slow hash: SHA-256 keyed by the uid, so equal codes of two accounts differ at rest.
 */
import { createHash } from 'node:crypto';
import type { Random } from '../../ports/random.ts';

export const RECOVERY_CODE_COUNT = 10;
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const LENGTH = 10;

export function newRecoveryCodes(random: Random): string[] {
  return Array.from({ length: RECOVERY_CODE_COUNT }, () => {
    const chars = Array.from(random.bytes(LENGTH), (byte) => ALPHABET[byte % 32]).join('');
    return `${chars.slice(0, 5)}-${chars.slice(5)}`;
  });
}

/** The stored form of a code typed by the user, or null when it cannot be one. */
export function recoveryCodeHash(uid: string, typed: string): string | null {
  const normal = typed.toLowerCase().replace(/[\s-]/g, '').replace(/o/g, '0').replace(/[il]/g, '1');
  if (normal.length !== LENGTH || ![...normal].every((c) => ALPHABET.includes(c))) return null;
  return createHash('sha256').update(`recovery:${uid}:${normal}`, 'utf8').digest('base64url');
}
