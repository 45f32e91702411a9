import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Session } from '../core/sessions/record.ts';
import type { SessionService } from '../core/sessions/service.ts';
import type { Metrics } from '../ops/metrics.ts';
import { unauthorized } from '../core/errors.ts';
import { consoleCookieToken } from './console-session.ts';

declare module 'fastify' {
  interface FastifyRequest {
    session: Session | null;
  }
}

/**
 * The presented token: `token: <t>` (octo-server clients), `Authorization: Bearer <t>`, or the web
 * console's HttpOnly cookie with its CSRF header (console-session.ts).
 */
export function presentedToken(request: FastifyRequest): string | null {
  const header = request.headers.token;
  if (typeof header === 'string' && header !== '') return header;
  const authorization = request.headers.authorization;
  if (typeof authorization === 'string' && authorization.length > 7 && authorization.slice(0, 7).toLowerCase() === 'bearer ') {
    return authorization.slice(7).trim();
  }
  return consoleCookieToken(request);
}


/** onRequest hook for routes marked auth: validates against the store on every request. */
export function authenticate(sessions: SessionService, metrics: Metrics) {
  // Children bound to their label once: observe() with labels hashed the label object on every request.
  const valid = metrics.validation.labels('valid');
  const invalid = metrics.validation.labels('invalid');
  return async function requireSession(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const token = presentedToken(request);
    if (token === null) throw unauthorized();
    const started = performance.now();
    const session = await sessions.validate(token);
    (session === null ? invalid : valid).observe((performance.now() - started) / 1000);
    if (session === null) throw unauthorized((await sessions.whyEnded(token)) ?? undefined);
    request.session = session;
  };
}

/** The session of an authenticated request (set by requireSession). */
export function sessionOf(request: FastifyRequest): Session {
  if (request.session === null) throw unauthorized();
  return request.session;
}
