import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import cookie from '@fastify/cookie';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Logger } from 'pino';
import type { Runtime } from '../runtime/runtime.ts';
import type { HttpConfig } from '../config/http.ts';
import { installErrorHandling, rejectMalformedRequest } from './errors.ts';
import { withNewPasswordBounds } from './schemas.ts';
import { accountRoutes } from './routes/accounts.ts';
import { sessionRoutes } from './routes/sessions.ts';
import { opsRoutes } from './routes/ops.ts';
import { codeRoutes } from './routes/codes.ts';
import { appConfigRoutes } from './routes/appconfig.ts';
import { qrRoutes } from './routes/qr.ts';
import { imRoutes } from './routes/im.ts';
import { verifyRoutes } from './routes/verify.ts';
import { adminRoutes } from './routes/admin.ts';
import { oidcRoutes } from './routes/oidc.ts';
import { alertRoutes } from './routes/alerts.ts';
import { consoleRoutes } from './routes/console.ts';
import { userAuditRoutes } from './routes/user-audit.ts';
import { passkeyRoutes } from './routes/passkeys.ts';
import { mfaRoutes } from './routes/mfa.ts';
import { octoRoutes } from './routes/octo.ts';
import { lazyRequestLogger } from './request-logger.ts';
import { closeConnectionsOnceIdle } from './drain.ts';
import { installAnswerHeaders } from './security-headers.ts';

export const BODY_LIMIT = 64 * 1024;

export async function buildApp(runtime: Runtime, logger: Logger): Promise<FastifyInstance> {
  const { trustProxy } = runtime.config;
  const loggerInstance: FastifyBaseLogger = logger;
  const app: FastifyInstance = Fastify({
    loggerInstance,
    // Per-request lines cost a fifth of the throughput of the validation path; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: lazyRequestLogger,
    bodyLimit: BODY_LIMIT,
    trustProxy: typeof trustProxy === 'boolean' ? trustProxy : [...trustProxy],
    return503OnClosing: true,
    ajv: { customOptions: { allErrors: false, coerceTypes: false, removeAdditional: false } },
    frameworkErrors: rejectMalformedRequest,
    ...slowClientLimits(runtime.config.http),
  });
  // Each connection holds a file descriptor: past the cap a new one is closed at once (net.Server).
  app.server.maxConnections = runtime.config.http.maxConnections;
  app.decorateRequest('session', null);
  installErrorHandling(app);
  closeConnectionsOnceIdle(app);
  installAnswerHeaders(app);
  // JSON in, JSON out: a text/plain body is refused (415) rather than half-understood.
  app.removeContentTypeParser('text/plain');
  acceptEmptyJsonBodies(app);

  // No parsing hook: the console's cookie is read only on requests without a token header.
  await app.register(cookie, { hook: false });
  const { origins, maxAgeSeconds } = runtime.config.cors;
  if (origins.length > 0) {
    // Web clients on their own origin (docs/api.md §1). Exact origins, compared as they are; no
    // credentials: such a client sends its token in a header, and the console's cookie stays
    // same-site. Any other origin gets no CORS headers, and its preflight a 404.
    const listed = new Set(origins);
    await app.register(cors, {
      // false (not listed, or no Origin at all): no CORS headers, and a preflight falls through to 404.
      origin: (origin, callback) => callback(null, origin !== undefined && listed.has(origin)),
      methods: ['GET', 'POST', 'PUT', 'DELETE'],
      allowedHeaders: ['token', 'authorization', 'content-type'],
      exposedHeaders: ['Retry-After'],
      credentials: false,
      maxAge: maxAgeSeconds,
    });
  }
  await app.register(swagger, {
    // New passwords are validated by the policy, not the schema; the document states its bounds.
    transform: ({ schema, url }) => ({ schema: withNewPasswordBounds(schema), url }),
    openapi: {
      info: { title: 'latchkey', description: 'Identity and session server: a logout is final.', version: '0.1.0' },
      components: {
        securitySchemes: {
          token: { type: 'apiKey', in: 'header', name: 'token' },
          bearer: { type: 'http', scheme: 'bearer' },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  // compat.octo: octo-server's shapes on octo's routes (login, register, quit, …), in place of latchkey's.
  octoRoutes(app, runtime);
  accountRoutes(app, runtime);
  sessionRoutes(app, runtime);
  qrRoutes(app, runtime);
  oidcRoutes(app, runtime);
  codeRoutes(app, runtime);
  appConfigRoutes(app, runtime);
  opsRoutes(app, runtime);
  imRoutes(app, runtime);
  verifyRoutes(app, runtime);
  adminRoutes(app, runtime);
  userAuditRoutes(app, runtime);
  alertRoutes(app, runtime);
  mfaRoutes(app, runtime);
  passkeyRoutes(app, runtime);
  consoleRoutes(app, runtime);
  return app;
}

/**
 * Fastify leaves requestTimeout and connectionTimeout at 0 (none): a body dripped a byte at a time
 * held its socket for good, and ~1,000 of them used up a node's descriptors. Node checks the
 * request and header timeouts every connectionsCheckingInterval (30 s by default), so the
 * interval follows the timeout. The idle timeout (socket inactivity) outlasts the QR long-poll.
 */
function slowClientLimits(http: HttpConfig) {
  const requestTimeout = http.requestTimeoutSeconds * 1000;
  return {
    requestTimeout,
    connectionTimeout: http.idleTimeoutSeconds * 1000,
    http: { headersTimeout: requestTimeout, connectionsCheckingInterval: Math.min(30_000, Math.max(250, requestTimeout / 4)) },
  };
}

/** Clients often send `content-type: application/json` with no body on POST /quit: treat it as {}. */
function acceptEmptyJsonBodies(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    parseJson(request, text, done);
  });
}
