import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../../runtime/runtime.ts';
import { unauthorized } from '../../core/errors.ts';
import { SERVICE_KEY_HEADER, serviceKeyCheck } from '../service-key.ts';
import { BODY_ERRORS, errorResponses } from '../schemas.ts';

const MAX_TOKEN_LENGTH = 256;

/**
 * POST /v1/auth/verify: other backends (a chat server, a gateway) ask who a session token belongs
 * to. Only holders of a configured service key may ask — octo-server's verify answered anyone, a
 * token oracle limited only by a rate (docs/octo-server.md §2, §8.9). Validation reads the store like every
 * request does (invariant 6), and the name and role come from the account store, never a cache.
 */
export function verifyRoutes(app: FastifyInstance, runtime: Runtime): void {
  const requireServiceKey = serviceKeyCheck(runtime.config.serviceKeys);

  app.post<{ Body: { token: string } }>('/v1/auth/verify', {
    onRequest: requireServiceKey,
    schema: {
      tags: ['sessions'],
      summary: 'Who a session token belongs to (for other backends; needs a service key)',
      description: `Header \`${SERVICE_KEY_HEADER}\`: one of the configured \`service_keys\` (403 otherwise). An unknown, expired or revoked token is 401.`,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['token'],
        properties: { token: { type: 'string', minLength: 1, maxLength: MAX_TOKEN_LENGTH } },
      },
      response: {
        200: {
          type: 'object',
          properties: { uid: { type: 'string' }, name: { type: 'string' }, role: { type: 'string' }, sid: { type: 'string' }, device_flag: { type: 'integer' } },
          required: ['uid', 'name', 'role', 'sid', 'device_flag'],
        },
        ...errorResponses(...BODY_ERRORS, 401, 403),
      },
    },
  }, async (request) => {
    const session = await runtime.sessions.validate(request.body.token);
    if (session === null) throw unauthorized();
    const user = await runtime.accounts.findByUid(session.uid);
    if (user === null || user.status !== 'active') throw unauthorized();
    return { uid: user.uid, name: user.name, role: user.role, sid: session.sid, device_flag: session.device_flag };
  });
}
