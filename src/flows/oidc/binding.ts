/**
 * What ties a handoff code to the client that started the login, so a code that leaks (Referer,
 * history, a link sent to a victim) is useless to anyone else — the hole octo-server's polled
 * authcode had (spec §7 item 1). A browser holds an HttpOnly cookie; a native app holds a verifier
 * and sent only its S256 challenge (the PKCE idea, RFC 7636 §4.2, between app and latchkey).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Random } from '../../ports/random.ts';

export type Binding =
  | { readonly kind: 'cookie'; readonly hash: string }
  | { readonly kind: 'app'; readonly challenge: string };

/** `__Host-` over https: no subdomain can plant or overwrite it (cookie tossing). */
export const bindingCookieName = (secure: boolean): string => (secure ? '__Host-lk_oidc' : 'lk_oidc');
const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/;
/** The state lives 10 minutes and the handoff code 60 s more. */
const COOKIE_MAX_AGE_SECONDS = 15 * 60;

export const newBindingSecret = (random: Random): string => random.bytes(32).toString('base64url');
export const s256 = (value: string): string => createHash('sha256').update(value).digest('base64url');

/** The binding cookie from a Cookie header, or null. */
export function readBindingCookie(header: string | undefined, secure: boolean): string | null {
  if (header === undefined) return null;
  const name = bindingCookieName(secure);
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      return COOKIE_VALUE.test(value) ? value : null;
    }
  }
  return null;
}

/** SameSite=Lax: sent on the top-level redirect back from the IdP, not on cross-site subrequests. */
export function bindingCookie(value: string, secure: boolean): string {
  return `${bindingCookieName(secure)}=${value}; Path=/; Max-Age=${COOKIE_MAX_AGE_SECONDS}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
}

/** Constant-time: hashing both sides first makes them 32 bytes whatever was presented. */
export function bindingMatches(binding: Binding, presented: { cookie: string | null; appVerifier: string | undefined }): boolean {
  const secret = binding.kind === 'cookie' ? presented.cookie : presented.appVerifier;
  const expected = binding.kind === 'cookie' ? binding.hash : binding.challenge;
  if (secret === null || secret === undefined || secret === '') return false;
  const given = Buffer.from(s256(secret), 'base64url');
  const stored = Buffer.from(expected, 'base64url');
  return given.length === stored.length && timingSafeEqual(given, stored);
}
