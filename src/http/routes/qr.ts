import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Runtime } from '../../runtime/runtime.ts';
import { createLoginRequest, pollLoginStatus } from '../../flows/qr/request.ts';
import { answerLoginRequest, scanLoginRequest } from '../../flows/qr/approval.ts';
import { exchangeAuthCode } from '../../flows/qr/exchange.ts';
import { QR_STATUSES, type QrStatus, type RequesterFlag } from '../../flows/qr/record.ts';
import { authenticate, sessionOf } from '../auth.ts';
import { auditContext } from '../context.ts';
import { BODY_ERRORS, errorResponses, loginOrChallengeSchema, printableText } from '../schemas.ts';

const uuidSchema = { type: 'string', pattern: '^[0-9a-f]{32}$' } as const;
const secretSchema = { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' } as const;
/** Kept until the login is exchanged, then written to the account database: no NUL (a 500 then on PostgreSQL). */
const deviceText = printableText(128);
const qrStatusSchema = { type: 'string', enum: QR_STATUSES } as const;

interface LoginUuidQuery {
  flag?: '1' | '2';
  device_id?: string;
  device_name?: string;
  device_model?: string;
}

interface LoginStatusQuery {
  uuid: string;
  poll_secret?: string;
  last_status?: QrStatus;
}

const requesterSchema = {
  type: 'object',
  properties: {
    device_name: { type: 'string' },
    device_model: { type: 'string' },
    ip: { type: 'string' },
    flag: { type: 'integer' },
    user_agent: { type: 'string' },
  },
} as const;

/**
 * These answers carry a secret (the poll secret, the auth code, a session token): no browser or
 * shared cache may keep them, or the next user of the machine reads the auth code from its cache.
 */
async function noStore(_request: FastifyRequest, reply: FastifyReply): Promise<void> {
  void reply.header('cache-control', 'no-store');
}

export function qrRoutes(app: FastifyInstance, runtime: Runtime): void {
  const requireSession = authenticate(runtime.sessions, runtime.metrics);
  // Waiting polls answer at once when the node shuts down, instead of holding it up to 25 s.
  const shutdown = new AbortController();
  app.addHook('preClose', async () => shutdown.abort());
  const pollSlots = runtime.qrPollSlots;

  app.get<{ Querystring: LoginUuidQuery }>('/v1/user/loginuuid', {
    onRequest: noStore,
    schema: {
      tags: ['qr'],
      summary: 'Start a QR login (browser or desktop): the QR shows `uuid`; keep `poll_secret` private',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          // Query values are strings; APP (0) is the scanner, never the requester.
          flag: { type: 'string', enum: ['1', '2'], description: '1 Web (default), 2 PC' },
          device_id: deviceText, device_name: deviceText, device_model: deviceText,
        },
      },
      response: {
        200: {
          type: 'object',
          properties: {
            uuid: { type: 'string' },
            qrcode: { type: 'object', properties: { svg: { type: 'string' }, text: { type: 'string' } } },
            poll_secret: { type: 'string' },
            expires_at: { type: 'integer', description: 'Unix time in milliseconds' },
          },
        },
        ...errorResponses(400, 429),
      },
    },
  }, async (request) => {
    await runtime.limiter.hit('qr_create', request.ip, runtime.config.rateLimits.qrCreate);
    const { flag, device_id, device_name, device_model } = request.query;
    const context = auditContext(request);
    const requesterFlag: RequesterFlag = flag === '2' ? 2 : 1;
    // compat.octo: the QR is a URL the TangSengDaoDao apps open (GET /v1/qrcode/:uuid, routes/octo.ts).
    const origin = runtime.config.publicUrl ?? `${request.protocol}://${request.host}`;
    return createLoginRequest(runtime, {
      flag: requesterFlag,
      device: { device_id: device_id ?? '', device_name: device_name ?? '', device_model: device_model ?? '' },
      ip: context.ip,
      user_agent: context.userAgent,
    }, runtime.config.compat.octo ? `${origin.replace(/\/+$/, '')}/v1/qrcode/` : undefined);
  });

  app.get<{ Querystring: LoginStatusQuery }>('/v1/user/loginstatus', {
    onRequest: noStore,
    schema: {
      tags: ['qr'],
      summary: 'Long-poll a QR login; answers when the status changes (from `last_status` if given)',
      querystring: {
        type: 'object',
        additionalProperties: false,
        required: ['uuid'],
        // A missing or malformed poll secret is a 404 like a wrong one, not a 400 that confirms the uuid.
        properties: { uuid: uuidSchema, poll_secret: { type: 'string', maxLength: 128 }, last_status: qrStatusSchema },
      },
      response: {
        200: { type: 'object', properties: { status: qrStatusSchema, auth_code: { type: 'string' } }, required: ['status'] },
        ...errorResponses(400, 404, 429),
      },
    },
  }, async (request, reply) => {
    const { uuid, poll_secret, last_status } = request.query;
    return pollLoginStatus(runtime, {
      uuid,
      pollSecret: poll_secret,
      lastStatus: last_status,
      signal: AbortSignal.any([shutdown.signal, clientGone(reply)]),
      // Its network, not the address: one IPv6 host holds a whole /64 (rate_limits.ipv6_prefix).
      clientIp: runtime.limiter.requester(request.ip),
      slots: pollSlots,
    });
  });

  app.post<{ Params: { uuid: string } }>('/v1/user/qrcode/:uuid/scan', {
    onRequest: requireSession,
    schema: {
      tags: ['qr'],
      summary: 'The signed-in app scanned a login QR: see who is asking',
      params: { type: 'object', required: ['uuid'], properties: { uuid: uuidSchema } },
      response: { 200: { type: 'object', properties: { status: { type: 'string' }, requester: requesterSchema } }, ...errorResponses(...BODY_ERRORS, 401, 403, 404, 409, 410) },
    },
  }, async (request) => scanLoginRequest(runtime, sessionOf(request), request.params.uuid, auditContext(request)));

  app.post<{ Body: { uuid: string; approve: boolean } }>('/v1/user/grant_login', {
    onRequest: requireSession,
    schema: {
      tags: ['qr'],
      summary: 'Approve or reject a scanned QR login (only the account that scanned it)',
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['uuid', 'approve'],
        properties: { uuid: uuidSchema, approve: { type: 'boolean' } },
      },
      response: { 200: { type: 'object', properties: { status: { type: 'string', enum: ['authed', 'rejected'] } } }, ...errorResponses(...BODY_ERRORS, 401, 403, 404, 409, 410) },
    },
  }, async (request) => {
    const { uuid, approve } = request.body;
    return answerLoginRequest(runtime, sessionOf(request), uuid, approve, auditContext(request));
  });

  app.post<{ Params: { auth_code: string }; Body: { uuid: string; poll_secret: string } }>('/v1/user/login_authcode/:auth_code', {
    onRequest: noStore,
    schema: {
      tags: ['qr'],
      summary: 'Exchange an approved QR login\'s auth code for a session (once)',
      params: { type: 'object', required: ['auth_code'], properties: { auth_code: secretSchema } },
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['uuid', 'poll_secret'],
        properties: { uuid: uuidSchema, poll_secret: { type: 'string', maxLength: 128 } },
      },
      response: { 200: loginOrChallengeSchema, ...errorResponses(...BODY_ERRORS, 403, 404, 409, 410, 429) },
    },
  }, async (request) => {
    await runtime.limiter.hit('qr_exchange', request.ip, runtime.config.rateLimits.qrExchange);
    const { uuid, poll_secret } = request.body;
    return exchangeAuthCode(runtime, { uuid, authCode: request.params.auth_code, pollSecret: poll_secret }, auditContext(request));
  });
}

/** Aborts when the client hangs up, so an abandoned long-poll stops holding its subscription. */
function clientGone(reply: FastifyReply): AbortSignal {
  const gone = new AbortController();
  reply.raw.once('close', () => gone.abort());
  return gone.signal;
}
