/**
 * Comparing secrets without telling an attacker how close they came. Both sides are hashed to 32
 * bytes first, so the comparison runs over equal lengths whatever was presented: neither the length
 * nor a common prefix shows in the time taken.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const sha256 = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/** Whether a presented secret (a key, a token, a MAC) is the expected one. */
export function sameSecret(presented: string, expected: string): boolean {
  return timingSafeEqual(sha256(presented), sha256(expected));
}

/** Whether a presented secret hashes to a stored SHA-256 (base64url), for secrets kept only as a hash. */
export function matchesSha256(presented: string, storedHash: string): boolean {
  const stored = Buffer.from(storedHash, 'base64url');
  const given = sha256(presented);
  return stored.length === given.length && timingSafeEqual(given, stored);
}
