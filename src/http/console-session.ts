/**
 * The web console's session: an HttpOnly cookie set by latchkey, never a token in page script.
 *
 * Why a cookie and not memory: the console is three pages, and a token held in memory dies with
 * every reload or new tab, each of which would then be a fresh login and a new "device" in the very
 * list the console shows. Why HttpOnly: a script injected into the page can act while the page is
 * open but cannot carry the token away. The price of a cookie is CSRF, paid twice over:
 * - SameSite=Strict: no cross-site request carries it.
 * - every request the cookie authenticates must also carry `x-latchkey-csrf`, an HMAC of the token
 *   (readable by the console's own script from a second, non-HttpOnly cookie). A page on another
 *   origin cannot read that cookie, and cannot send a custom header without a CORS preflight,
 *   which latchkey never grants. The value is derived from the token, not the sid, because sids are
 *   listed to the user and to admins.
 * Over https both cookies take the `__Host-` prefix, so a sibling subdomain cannot plant its own
 * session in the console (cookie tossing, RFC 6265bis §4.1.3.2). "Over https" is what the browser
 * sees: `public_url` says so when TLS ends at a proxy latchkey does not trust (`secureCookies`).
 *
 * A login route answers in cookie mode only when asked with `x-latchkey-session: cookie`; a header
 * a cross-site form cannot send, so a login CSRF (signing the victim into the attacker's account)
 * is refused for the same reason as any other.
 */
import { createHmac } from 'node:crypto';
import { sameSecret } from '../core/constant-time.ts';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../ports/clock.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Whether cookies set or read for this request are Secure and `__Host-` prefixed: decided by
     * `public_url` when it is set, else by the connection (installConsoleSessions). For every
     * cookie latchkey sets, so the browser and latchkey agree on its name.
     */
    readonly secureCookies: boolean;
  }
}

/**
 * Behind a TLS-terminating proxy and without trust_proxy, the connection is plain http while the
 * browser is on https: judged by the connection alone, cookies went out without Secure and without
 * `__Host-`. An https `public_url` makes them secure always; an http one never.
 */
export function cookiesAreSecure(publicUrl: string | undefined, request: FastifyRequest): boolean {
  return publicUrl === undefined ? request.protocol === 'https' : publicUrl.startsWith('https:');
}

export const SESSION_MODE_HEADER = 'x-latchkey-session';
export const CSRF_HEADER = 'x-latchkey-csrf';

/** Answers after which the cookie's session is over: clear the cookies with it. */
const ENDING_ROUTES = new Set(['/v1/user/quit', '/v1/auth/oidc/:id/logout']);

interface CookieNames {
  readonly session: string;
  readonly csrf: string;
}

function cookieNames(https: boolean): CookieNames {
  return https
    ? { session: '__Host-latchkey_session', csrf: '__Host-latchkey_csrf' }
    : { session: 'latchkey_session', csrf: 'latchkey_csrf' };
}

export function csrfTokenFor(token: string): string {
  return createHmac('sha256', token).update('latchkey console csrf v1').digest('base64url');
}

/** Requests whose session came from the cookie, so their answers may clear it. */
const cookieAuthenticated = new WeakSet<FastifyRequest>();

/**
 * The session token the console cookie carries, or null. Only with a matching CSRF header: the
 * browser attaches the cookie to any same-site request, the header proves our own page sent it.
 */
export function consoleCookieToken(request: FastifyRequest): string | null {
  const names = cookieNames(request.secureCookies);
  const header = request.headers.cookie;
  // Parsed here, not in a hook for every request: most requests carry the token header instead.
  const token = header === undefined ? undefined : request.server.parseCookie(header)[names.session];
  if (token === undefined || token === '') return null;
  const presented = request.headers[CSRF_HEADER];
  if (typeof presented !== 'string' || !sameSecret(presented, csrfTokenFor(token))) return null;
  cookieAuthenticated.add(request);
  return token;
}

/**
 * Strict: the console is one site; no other site's page may send its cookie along. Appended here,
 * in this onSend hook, after @fastify/cookie's own hook has written the route's cookies (the OIDC
 * exchange's), so it is serialised by the library and added beside those.
 */
function setCookie(reply: FastifyReply, name: string, value: string, maxAgeSeconds: number, https: boolean, httpOnly: boolean): void {
  const cookie = reply.server.serializeCookie(name, value, { path: '/', maxAge: maxAgeSeconds, sameSite: 'strict', httpOnly, secure: https });
  // Fastify appends to set-cookie rather than replacing it.
  void reply.header('set-cookie', cookie);
}

function setSessionCookies(reply: FastifyReply, token: string, maxAgeSeconds: number, https: boolean): void {
  const names = cookieNames(https);
  setCookie(reply, names.session, token, maxAgeSeconds, https, true);
  setCookie(reply, names.csrf, csrfTokenFor(token), maxAgeSeconds, https, false);
}

function clearSessionCookies(reply: FastifyReply, https: boolean): void {
  const names = cookieNames(https);
  setCookie(reply, names.session, '', 0, https, true);
  setCookie(reply, names.csrf, '', 0, https, false);
}

function jsonObject(payload: unknown): Record<string, unknown> | null {
  if (typeof payload !== 'string') return null;
  try {
    const parsed: unknown = JSON.parse(payload);
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * Moves the token of a login response into the cookies (and out of the body, so page script never
 * sees it), and clears the cookies once their session has ended. onSend, not preSerialization:
 * the login response schema requires `token`, so it can only be removed after serialization.
 */
export function installConsoleSessions(app: FastifyInstance, clock: Clock, publicUrl: string | undefined): void {
  app.decorateRequest('secureCookies', {
    getter(this: FastifyRequest): boolean {
      return cookiesAreSecure(publicUrl, this);
    },
  });
  // A callback hook, not an async one: it runs on every answer, and almost always has nothing to do.
  app.addHook('onSend', (request, reply, payload, done) => {
    done(null, consoleAnswer(request, reply, payload, clock));
  });
}

function consoleAnswer(request: FastifyRequest, reply: FastifyReply, payload: unknown, clock: Clock): unknown {
  const ok = reply.statusCode >= 200 && reply.statusCode < 300;
  // The console sends the mode header on every call; only a login answer carries a token to move.
  if (ok && request.headers[SESSION_MODE_HEADER] === 'cookie' && typeof payload === 'string' && payload.includes('"token":')) {
    const body = jsonObject(payload);
    if (body !== null && typeof body.token === 'string' && typeof body.sid === 'string' && typeof body.expires_at === 'number') {
      const { token, im_token: _imToken, ...rest } = body;
      setSessionCookies(reply, token, Math.max(0, Math.floor((body.expires_at - clock.now()) / 1000)), request.secureCookies);
      return JSON.stringify(rest);
    }
  }
  if (!cookieAuthenticated.has(request)) return payload;
  const ended = ok && ENDING_ROUTES.has(request.routeOptions.url ?? '');
  // Only `unauthorized` means the session is gone; a wrong current password (invalid_credentials) does not.
  const revoked = reply.statusCode === 401 && jsonObject(payload)?.code === 'unauthorized';
  if (ended || revoked) clearSessionCookies(reply, request.secureCookies);
  return payload;
}
