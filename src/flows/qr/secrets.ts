/**
 * The three random values of a QR login. The uuid is public (it is in the QR image, anyone
 * looking at the screen has it); the poll secret and the auth code are what octo-server lacked
 * (spec §7.2: whoever saw the QR could poll and take the login), so they are long, random, and
 * stored only as hashes.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Random } from '../../ports/random.ts';

/** 128 bits, hex: unguessable, and the 32-hex shape octo-server clients know. */
export const newRequestId = (random: Random): string => random.bytes(16).toString('hex');
/** 256 bits each. */
export const newPollSecret = (random: Random): string => random.bytes(32).toString('base64url');
export const newAuthCode = (random: Random): string => random.bytes(32).toString('base64url');

export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('base64url');

/**
 * Compares a presented secret with a stored hash in constant time: hashing first makes both sides
 * 32 bytes whatever was presented, so neither the length nor a common prefix leaks through timing.
 */
export function matchesHash(presented: string | undefined, storedHash: string | null): boolean {
  if (presented === undefined || presented === '' || storedHash === null) return false;
  const given = createHash('sha256').update(presented).digest();
  const stored = Buffer.from(storedHash, 'base64url');
  return stored.length === given.length && timingSafeEqual(given, stored);
}
