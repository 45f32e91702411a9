/**
 * Headers that whole kinds of answers carry, set in one place so no route can forget them.
 */
import type { FastifyInstance } from 'fastify';

/**
 * Every API answer may carry a secret: a session token (every login and register), a QR poll
 * secret or auth code, an IM token, a handoff. A browser's disk cache, a corporate proxy or a CDN
 * must keep none of them (RFC 9111 §5.2.2.5); Pragma for HTTP/1.0 caches. Errors too: a 401 that a
 * cache served back later would sign a user out for nothing.
 */
export function refuseCachingOfApiAnswers(app: FastifyInstance): void {
  // A callback hook, not an async one: it runs on every answer.
  app.addHook('onSend', (request, reply, payload, done) => {
    if (request.url.startsWith('/v1/')) {
      if (!reply.hasHeader('cache-control')) void reply.header('cache-control', 'no-store');
      if (!reply.hasHeader('pragma')) void reply.header('pragma', 'no-cache');
    }
    done(null, payload);
  });
}
