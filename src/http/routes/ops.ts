import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../../runtime.ts';

/** Liveness, readiness (both stores answer) and Prometheus metrics. */
export function opsRoutes(app: FastifyInstance, runtime: Runtime): void {
  app.get('/healthz', { schema: { tags: ['operations'], hide: true } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { tags: ['operations'], hide: true } }, async (_request, reply) => {
    const [kv, db] = await Promise.all([runtime.kv.ping(), runtime.accounts.ping()]);
    if (kv && db) return { status: 'ready', kv, db };
    return reply.code(503).send({ status: 503, code: 'upstream_unavailable', msg: 'a backing store is unavailable', details: { kv, db } });
  });

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    const body = await runtime.metrics.registry.metrics();
    return reply.type(runtime.metrics.registry.contentType).send(body);
  });
}
