import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../../runtime/runtime.ts';
import { invalidRequest } from '../../core/errors.ts';
import { authenticate, sessionOf } from '../auth.ts';
import { errorResponses } from '../schemas.ts';

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 100;

const eventSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    type: { type: 'string' },
    result: { type: 'string', enum: ['ok', 'fail'] },
    reason: { type: 'string', nullable: true },
    ip: { type: 'string', nullable: true },
    user_agent: { type: 'string', nullable: true },
    at: { type: 'integer', description: 'Unix time in milliseconds' },
    current: { type: 'boolean', description: 'the event was made by this session' },
  },
} as const;

/**
 * GET /v1/user/audit: the caller's own recent security events (sign-ins, failed attempts on the
 * account, sign-outs, password changes), newest first, so a person can notice what they did not do.
 * Only events recorded against the caller's uid: failed attempts at an unknown username, and other
 * accounts' events, never show.
 */
export function userAuditRoutes(app: FastifyInstance, runtime: Runtime): void {
  const requireSession = authenticate(runtime.sessions, runtime.metrics);

  app.get<{ Querystring: { limit?: string } }>('/v1/user/audit', {
    onRequest: requireSession,
    schema: {
      tags: ['sessions'],
      summary: 'This user\'s recent security events, newest first',
      querystring: {
        type: 'object',
        additionalProperties: false,
        // Query values are strings (no type coercion): digits here, the range below.
        properties: { limit: { type: 'string', pattern: '^[0-9]{1,4}$', description: `1–${MAX_LIMIT}, default ${DEFAULT_LIMIT}` } },
      },
      response: { 200: { type: 'object', required: ['events'], properties: { events: { type: 'array', items: eventSchema } } }, ...errorResponses(400, 401) },
    },
  }, async (request) => {
    const session = sessionOf(request);
    const limit = request.query.limit === undefined ? DEFAULT_LIMIT : Number(request.query.limit);
    if (limit < 1 || limit > MAX_LIMIT) throw invalidRequest('querystring.limit', `limit must be between 1 and ${MAX_LIMIT}`);
    const events = await runtime.accounts.queryAudit({ uid: session.uid, limit });
    // `{events}` as the HTTP contract has it, so fields can be added beside the list later.
    return { events: events.map((event) => ({
      id: event.id,
      type: event.type,
      result: event.result,
      reason: event.reason,
      ip: event.ip,
      user_agent: event.userAgent,
      at: event.at,
      current: event.sid === session.sid,
    })) };
  });
}
