import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../../runtime/runtime.ts';
import { LatchkeyError, forbidden, notFound } from '../../core/errors.ts';
import { authenticate, presentedToken, sessionOf } from '../auth.ts';
import { sameSecret } from '../../core/constant-time.ts';
import { sessionTokenTag } from '../../core/sessions/im-token-value.ts';
import { errorResponses } from '../schemas.ts';

/**
 * GET /v1/user/im_token: the IM token the caller's device flag shares right now (docs/design.md §3.4). A
 * logout on another device of the same flag rotates it; the remaining clients fetch it here when
 * their IM connection is refused.
 */
export function imRoutes(app: FastifyInstance, runtime: Runtime): void {
  const requireSession = authenticate(runtime.sessions, runtime.metrics);

  app.get<{ Querystring: { flag?: string } }>('/v1/user/im_token', {
    onRequest: requireSession,
    schema: {
      tags: ['sessions'],
      summary: 'The current IM token of this session\'s device flag',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { flag: { type: 'string', enum: ['0', '1', '2'], description: 'must be this session\'s flag (optional)' } },
      },
      response: { 200: { type: 'object', properties: { im_token: { type: 'string' } }, required: ['im_token'] }, ...errorResponses(400, 401, 403, 404) },
    },
  }, async (request, reply) => {
    // The answer is a credential for the IM server: no browser or proxy may keep it past a logout.
    void reply.header('cache-control', 'no-store');
    const session = sessionOf(request);
    if (!runtime.imEnabled) throw notFound('IM token (no IM server is configured)');
    // Each flag's token connects that flag's devices only: a browser session must not hold the phone's.
    if (request.query.flag !== undefined && Number(request.query.flag) !== session.device_flag) {
      throw forbidden('a session can only read the IM token of its own device flag');
    }
    let imToken = await runtime.sessions.im.current(session.uid, session.device_flag);
    // compat.octo's Web and PC: the session token is the IM token, and the store keeps only its tag
    // (docs/octo-compat.md §2, 8). Another tag there is a login replacing this one right now.
    if (runtime.imSessionTokenFlags.includes(session.device_flag)) {
      imToken = imToken !== null && sameSecret(imToken, sessionTokenTag(session.sid)) ? presentedToken(request) : null;
    }
    // No live token although the session is live: a rotation is still owed to a down IM server.
    // The retry worker completes it; asking again before its next pass gains nothing.
    if (imToken === null) {
      const retryAfter = Math.max(1, Math.ceil(runtime.config.im.quitRetry.intervalMs / 1000));
      throw new LatchkeyError('upstream_unavailable', 'the IM server has not taken this device\'s token yet; try again shortly', undefined, retryAfter);
    }
    return { im_token: imToken };
  });
}
