import type { FastifyInstance } from 'fastify';

const IDLE_CHECK_MS = 25;

/**
 * server.close() closes the keep-alive connections that are idle at that moment. A request still
 * in flight then (a QR long-poll woken by the shutdown, a login hashing its password) answers
 * later and leaves its connection open for up to keepAliveTimeout (72 s): the drain waits for it,
 * and `latchkey serve` gives up after 30 s with exit code 1. So while closing, each connection is
 * closed as soon as its answer has gone out.
 */
export function closeConnectionsOnceIdle(app: FastifyInstance): void {
  app.addHook('preClose', async () => {
    const timer = setInterval(() => app.server.closeIdleConnections(), IDLE_CHECK_MS);
    timer.unref();
    app.server.once('close', () => clearInterval(timer));
  });
}
