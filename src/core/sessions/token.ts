import { hash } from 'node:crypto';
import type { Random } from '../../ports/random.ts';

/**
 * A session token is 32 random bytes, base64url (43 characters), shown once and never stored.
 * The store keys the session by sid = base64url(SHA-256(token)): public, listable, and useless
 * to authenticate with.
 */
const TOKEN_BYTES = 32;
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export function newSessionToken(random: Random): { token: string; sid: string } {
  const token = random.bytes(TOKEN_BYTES).toString('base64url');
  return { token, sid: sidOf(token) };
}

export function sidOf(token: string): string {
  // One-shot hash(): a Hash object per validated request cost 2.5× as much.
  return hash('sha256', token, 'base64url');
}

/** The sid of a well-formed token, or null without touching the store (garbage is 401, cheaply). */
export function sidOfPresentedToken(token: string): string | null {
  return TOKEN_SHAPE.test(token) ? sidOf(token) : null;
}
