/**
 * The baseline: a bare Fastify route (`GET /` → `{ok:true}`), no auth, no store, no logger.
 * Whatever latchkey's validation costs is measured against this, on the same machine, in the same run.
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.get('/', async () => ({ ok: true }));
await app.listen({ host: '127.0.0.1', port: Number(process.argv[2] ?? 0) });

const address = app.server.address();
const port = typeof address === 'object' && address !== null ? address.port : 0;
process.stdout.write(`${JSON.stringify({ msg: 'bare listening', url: `http://127.0.0.1:${port}` })}\n`);

const stop = () => {
  app.close().then(() => process.exit(0), () => process.exit(1));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
