/**
 * What ties a handoff code to the client that started the login, so a code that leaks (Referer,
 * history, a link sent to a victim) is useless to anyone else — the hole octo-server's polled
 * authcode had (docs/octo-server.md §8.1). A browser holds an HttpOnly cookie; a native app holds a verifier
 * and sent only its S256 challenge (the PKCE idea, RFC 7636 §4.2, between app and latchkey).
 *
 * Every login is bound to a fresh secret the server made. A cookie the browser presents is never
 * the new login's secret: a sibling subdomain can plant cookies (cookie tossing; over plain http the
 * `__Host-` prefix is not available), and a planted secret is one the attacker knows. The cookie
 * carries the secrets of the logins still in flight in this browser (other tabs), each signed by
 * this server with its issue time, `<secret>.<issued at>.<mac>` joined by `~`; entries that are
 * unsigned, badly signed or older than the cookie's life are dropped.
 */
import { createHash, createHmac, hkdfSync } from 'node:crypto';
import { matchesSha256, sameSecret } from '../../core/constant-time.ts';
import type { Clock } from '../../ports/clock.ts';
import type { Random } from '../../ports/random.ts';
import type { TokenKey } from '../../config/oidc.ts';

export type Binding =
  | { readonly kind: 'cookie'; readonly hash: string }
  | { readonly kind: 'app'; readonly challenge: string };

/** `__Host-` over https: no subdomain can plant or overwrite it (cookie tossing). */
export const bindingCookieName = (secure: boolean): string => (secure ? '__Host-lk_oidc' : 'lk_oidc');
const COOKIE_VALUE = /^[A-Za-z0-9_.~-]{1,1024}$/;
const ENTRY = /^([A-Za-z0-9_-]{43})\.([0-9a-z]{1,11})\.([A-Za-z0-9_-]{22})$/;
/** The state lives 10 minutes and the handoff code 60 s more. */
const COOKIE_MAX_AGE_SECONDS = 15 * 60;
/** Logins in flight in one browser (tabs) whose secrets the cookie keeps; the oldest goes first. */
const MAX_ENTRIES = 5;
const MAC_BYTES = 16;
/** A differently named key from oidc.token_key: the cookie MAC never shares a key with the token cipher. */
const KEY_INFO = 'latchkey oidc binding cookie v1';

export const s256 = (value: string): string => createHash('sha256').update(value).digest('base64url');

interface CookieEntry {
  readonly raw: string;
  readonly secret: string;
}

/** Signs and reads binding cookie entries; keyed by oidc.token_key (the first signs, every one verifies). */
export class BindingCookies {
  readonly #keys: readonly Buffer[];
  readonly #clock: Clock;
  readonly #random: Random;

  constructor(tokenKeys: readonly TokenKey[], clock: Clock, random: Random) {
    this.#keys = tokenKeys.map((k) => Buffer.from(hkdfSync('sha256', k.key, Buffer.alloc(0), KEY_INFO, 32)));
    this.#clock = clock;
    this.#random = random;
  }

  /** A fresh secret for a new login, and the cookie value carrying it after the live entries presented. */
  issue(presented: readonly string[]): { readonly secret: string; readonly value: string } {
    const key = this.#keys[0];
    if (key === undefined) throw new Error('oidc.token_key is not configured');
    const secret = this.#random.bytes(32).toString('base64url');
    const signed = `${secret}.${this.#clock.now().toString(36)}`;
    const entry = `${signed}.${mac(key, signed)}`;
    const kept = [...new Set(this.#verified(presented).map((e) => e.raw))].slice(-(MAX_ENTRIES - 1));
    return { secret, value: [...kept, entry].join('~') };
  }

  /** The secrets of live entries this server signed, from every binding cookie the request carried. */
  secrets(presented: readonly string[]): string[] {
    return this.#verified(presented).map((entry) => entry.secret);
  }

  #verified(presented: readonly string[]): CookieEntry[] {
    const now = this.#clock.now();
    const entries = presented.flatMap((value) => value.split('~')).slice(0, 4 * MAX_ENTRIES);
    return entries.flatMap((raw) => {
      const match = ENTRY.exec(raw);
      if (match === null) return [];
      const [, secret = '', issuedText = '', given = ''] = match;
      const age = now - parseInt(issuedText, 36);
      if (!(age >= -60_000 && age <= COOKIE_MAX_AGE_SECONDS * 1000)) return [];
      const signed = `${secret}.${issuedText}`;
      return this.#keys.some((key) => sameSecret(given, mac(key, signed))) ? [{ raw, secret }] : [];
    });
  }
}

/**
 * Every value of the binding cookie in a Cookie header (a tossed cookie can sit beside ours). Read
 * by hand: cookie parsers keep one value per name, and the one kept may be the planted one.
 */
export function readBindingCookies(header: string | undefined, secure: boolean): string[] {
  if (header === undefined) return [];
  const name = bindingCookieName(secure);
  const values: string[] = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      if (COOKIE_VALUE.test(value)) values.push(value);
    }
  }
  return values;
}

/** A cookie for the HTTP layer to set. */
export interface CookieToSet {
  readonly name: string;
  readonly value: string;
  readonly options: { readonly path: '/'; readonly maxAge: number; readonly httpOnly: true; readonly sameSite: 'lax'; readonly secure: boolean };
}

/** SameSite=Lax: sent on the top-level redirect back from the IdP, not on cross-site subrequests. */
export function bindingCookie(value: string, secure: boolean): CookieToSet {
  return { name: bindingCookieName(secure), value, options: { path: '/', maxAge: COOKIE_MAX_AGE_SECONDS, httpOnly: true, sameSite: 'lax', secure } };
}

/** Constant-time per candidate: hashing first makes both sides 32 bytes whatever was presented. */
export function bindingMatches(binding: Binding, presented: { cookieSecrets: readonly string[]; appVerifier: string | undefined }): boolean {
  if (binding.kind === 'app') return presented.appVerifier !== undefined && presented.appVerifier !== '' && matchesSha256(presented.appVerifier, binding.challenge);
  return presented.cookieSecrets.some((secret) => matchesSha256(secret, binding.hash));
}

const mac = (key: Buffer, text: string): string => createHmac('sha256', key).update(text).digest().subarray(0, MAC_BYTES).toString('base64url');
