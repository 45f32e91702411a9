/**
 * The secrets of a QR login. The uuid is public (it is in the QR image, anyone looking at the
 * screen has it); the poll secret and the auth code are what octo-server lacked (there,
 * whoever saw the QR could poll and take the login), so they are long and random, and neither is
 * ever stored: the poll secret only as its hash, the auth code not at all (deriveAuthCode).
 */
import { createHash, createHmac } from 'node:crypto';
import { matchesSha256 } from '../../core/constant-time.ts';
import type { Random } from '../../ports/random.ts';

/** 128 bits, hex: unguessable, and the 32-hex shape octo-server clients know. */
export const newRequestId = (random: Random): string => random.bytes(16).toString('hex');
/** 256 bits. */
export const newPollSecret = (random: Random): string => random.bytes(32).toString('base64url');
/** 256 bits, drawn at each approval; stored in the record, useless without the poll secret. */
export const newCodeNonce = (random: Random): string => random.bytes(32).toString('base64url');

/**
 * The auth code, HMAC-SHA256 keyed by the poll secret over the uuid and the approval's nonce. The
 * poller gets it by presenting its poll secret, the exchange recomputes it the same way, and the
 * store holds only the nonce and the poll secret's hash: a copy of the store (a backup, a replica,
 * a leaked dump) yields no code, where a stored code let its reader finish the login.
 */
export function deriveAuthCode(pollSecret: string, uuid: string, nonce: string): string {
  return createHmac('sha256', pollSecret).update(`latchkey qr auth code\0${uuid}\0${nonce}`).digest('base64url');
}

export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('base64url');

/** Whether a presented poll secret is the one whose hash the record keeps (constant time: core/constant-time.ts). */
export function matchesHash(presented: string | undefined, storedHash: string | null): boolean {
  if (presented === undefined || presented === '' || storedHash === null) return false;
  return matchesSha256(presented, storedHash);
}
