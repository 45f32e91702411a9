import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Runtime } from '../../runtime/runtime.ts';
import { sameSecret } from '../../core/constant-time.ts';
import { errorSchema } from '../schemas.ts';

const readySchema = {
  type: 'object',
  properties: { status: { type: 'string', enum: ['ready'] }, kv: { type: 'boolean' }, db: { type: 'boolean' } },
} as const;

/** The 503 of /readyz: `details` says which store did not answer, so it must survive serialisation. */
const notReadySchema = {
  ...errorSchema,
  description: '`upstream_unavailable`; `details: {kv, db}` says which store did not answer',
  properties: {
    ...errorSchema.properties,
    details: { type: 'object', properties: { kv: { type: 'boolean' }, db: { type: 'boolean' } }, additionalProperties: true },
  },
} as const;

/** Liveness, readiness (both stores answer) and, only to a holder of the metrics bearer key, Prometheus metrics. */
export function opsRoutes(app: FastifyInstance, runtime: Runtime): void {
  app.get('/healthz', {
    schema: {
      tags: ['operations'],
      summary: 'Liveness: the process answers (reads no store)',
      response: { 200: { type: 'object', properties: { status: { type: 'string', enum: ['ok'] } } } },
    },
  }, async () => ({ status: 'ok' }));

  app.get('/readyz', {
    schema: {
      tags: ['operations'],
      summary: 'Readiness: both the session store and the account database answer',
      response: { 200: readySchema, 503: notReadySchema },
    },
  }, async (_request, reply) => {
    const [kv, db] = await Promise.all([runtime.kv.ping(), runtime.accounts.ping()]);
    if (kv && db) return { status: 'ready', kv, db };
    return reply.code(503).send({ status: 503, code: 'upstream_unavailable', msg: 'a backing store is unavailable', details: { kv, db } });
  });

  const { bearerKey } = runtime.config.metrics;
  // Without a key the API port has no /metrics at all: counters of every flow are for the operator's
  // network (the metrics listener), not for whoever can reach the login API.
  if (bearerKey === undefined) return;
  const presentsKey = bearerKeyCheck(bearerKey);
  app.get('/metrics', {
    schema: {
      tags: ['operations'],
      summary: 'Prometheus metrics, only to `Authorization: Bearer <metrics.bearer_key>`; any other request is a 404',
      security: [{ bearer: [] }],
      response: {
        200: { description: 'the Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } },
        404: { ...errorSchema, description: '`not_found`: no key, or a wrong one' },
      },
    },
  }, async (request, reply) => {
    // A wrong or missing key looks exactly like a route that does not exist.
    if (!presentsKey(request)) return reply.callNotFound();
    const body = await runtime.metrics.registry.metrics();
    return reply.type(runtime.metrics.registry.contentType).send(body);
  });
}

/** Constant time (core/constant-time.ts): the time taken says nothing of how close a guess came. */
function bearerKeyCheck(key: string): (request: FastifyRequest) => boolean {
  return (request) => {
    const header = request.headers.authorization;
    // The scheme name is case-insensitive (RFC 9110 §11.1); the key is not.
    const presented = typeof header === 'string' && /^bearer /i.test(header) ? header.slice('bearer '.length) : '';
    return sameSecret(presented, key) && presented !== '';
  };
}
