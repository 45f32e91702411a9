/**
 * The "not you?" link of the new-device alert (src/flows/alerts/new-device.ts, docs/api.md §6, docs/security.md §5a).
 * The mail's link opens a console page (GET never acts: mail scanners fetch links); its button
 * posts the link's secret here. No session: the one-time secret is the authorisation.
 */
import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../../runtime/runtime.ts';
import { signOutEverywhere } from '../../flows/alerts/new-device.ts';
import { auditContext } from '../context.ts';
import { BODY_ERRORS, errorResponses } from '../schemas.ts';

export function alertRoutes(app: FastifyInstance, runtime: Runtime): void {
  app.post<{ Body: { token: string } }>('/v1/user/alerts/sign_out_everywhere', {
    schema: {
      tags: ['sessions'],
      summary: 'End every session of the account named by a new-device alert\'s one-time link',
      description: 'No session needed: `token` is the `t` of the alert\'s link (43 characters, one use, 24 hours). ' +
        'A malformed token is 400; an unknown, used or lapsed one is 410 `expired`. Rate-limited per IP like login.',
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['token'],
        properties: { token: { type: 'string', minLength: 1, maxLength: 128 } },
      },
      response: {
        200: { type: 'object', properties: { revoked: { type: 'integer' } }, required: ['revoked'] },
        ...errorResponses(...BODY_ERRORS, 410, 429),
      },
    },
  }, async (request) => {
    await runtime.limiter.hit('alert_sign_out', request.ip, runtime.config.rateLimits.login);
    const revoked = await signOutEverywhere(runtime, request.body.token, auditContext(request));
    return { revoked };
  });
}
