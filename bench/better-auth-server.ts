/**
 * The peer under comparison: better-auth, mounted on Fastify as its Fastify integration guide shows
 * (a catch-all `/api/auth/*` route handing a Web Request to `auth.handler`), in its own child
 * process like bench/bare-server.ts.
 *
 *   node bench/better-auth-server.ts --db <file> [--redis redis://…] [--cookie-cache]
 *
 * Database: SQLite through node:sqlite's DatabaseSync (its SQLite adapter guide), schema created
 * at start by its programmatic migrations. With --redis, Redis is its `secondaryStorage`, where
 * its sessions then live (its default when secondary storage is set). --cookie-cache turns on
 * `session.cookieCache` (5 minutes, its default strategy). Everything else is its default, except
 * rate limiting, off as it is for latchkey in these benchmarks, and password hashing: sign-ins only
 * prepare the session pool (as latchkey's cheap argon2 settings do there), and its scrypt would
 * take minutes for 1,000 of them on this machine; get-session never hashes a password.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { betterAuth, type BetterAuthOptions, type SecondaryStorage } from 'better-auth';
import { getMigrations } from 'better-auth/db/migration';
import { fromNodeHeaders } from 'better-auth/node';

const { values } = parseArgs({
  options: {
    db: { type: 'string' },
    redis: { type: 'string' },
    'cookie-cache': { type: 'boolean', default: false },
  },
});
if (values.db === undefined) throw new Error('--db <sqlite file> is required');

/** A fixed secret: cookies are signed with it; nothing here outlives the run. */
const SECRET = 'latchkey-bench-better-auth-secret-0123456789';

/** Its Redis secondary storage, written against ioredis the way its docs write it for node-redis. */
function redisStorage(url: string): SecondaryStorage {
  const redis = new Redis(url);
  return {
    get: (key) => redis.get(key),
    set: async (key, value, ttl) => {
      if (ttl !== undefined && ttl > 0) await redis.set(key, value, 'EX', ttl);
      else await redis.set(key, value);
    },
    delete: async (key) => {
      await redis.del(key);
    },
    getAndDelete: (key) => redis.getdel(key),
    increment: async (key, ttl) => {
      const count = await redis.incr(key);
      if (count === 1) await redis.expire(key, ttl);
      return count;
    },
  };
}

/** Salted SHA-256: only fast, for the setup's sign-ins. */
const cheapPasswords = {
  hash: async (password: string) => {
    const salt = randomBytes(16).toString('hex');
    return `${salt}:${createHash('sha256').update(salt + password).digest('hex')}`;
  },
  verify: async ({ hash, password }: { hash: string; password: string }) => {
    const [salt = '', digest = ''] = hash.split(':');
    const expected = Buffer.from(digest, 'hex');
    const actual = createHash('sha256').update(salt + password).digest();
    return expected.length === actual.length && timingSafeEqual(expected, actual);
  },
};

function authOptions(baseURL: string): BetterAuthOptions {
  return {
    baseURL,
    secret: SECRET,
    database: new DatabaseSync(values.db ?? ''),
    emailAndPassword: { enabled: true, password: cheapPasswords },
    rateLimit: { enabled: false },
    telemetry: { enabled: false },
    ...(values.redis === undefined ? {} : { secondaryStorage: redisStorage(values.redis) }),
    ...(values['cookie-cache'] === true ? { session: { cookieCache: { enabled: true, maxAge: 5 * 60 } } } : {}),
  };
}

let auth: ReturnType<typeof betterAuth> | null = null;

const app = Fastify({ logger: false });
app.route({
  method: ['GET', 'POST'],
  url: '/api/auth/*',
  async handler(request, reply) {
    // Answers only once migrations ran; the runner waits for /api/auth/ok to answer 200.
    if (auth === null) return reply.status(503).send({ error: 'starting' });
    const url = new URL(request.url, `http://${request.headers.host}`);
    const body = request.body === undefined || request.body === null ? {} : { body: JSON.stringify(request.body) };
    const response = await auth.handler(new Request(url, { method: request.method, headers: fromNodeHeaders(request.headers), ...body }));
    reply.status(response.status);
    response.headers.forEach((value, key) => {
      reply.header(key, value);
    });
    return reply.send(response.body === null ? null : await response.text());
  },
});
await app.listen({ host: '127.0.0.1', port: 0 });

const address = app.server.address();
const port = typeof address === 'object' && address !== null ? address.port : 0;
const url = `http://127.0.0.1:${port}`;
const options = authOptions(url);
const { runMigrations } = await getMigrations(options);
await runMigrations();
auth = betterAuth(options);
process.stdout.write(`${JSON.stringify({ msg: 'better-auth listening', url })}\n`);

const stop = () => {
  app.close().then(() => process.exit(0), () => process.exit(1));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
