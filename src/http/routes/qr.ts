import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Runtime } from '../../runtime/runtime.ts';
import { createLoginRequest, pollLoginStatus } from '../../flows/qr/request.ts';
import { answerLoginRequest, scanLoginRequest } from '../../flows/qr/approval.ts';
import { exchangeAuthCode } from '../../flows/qr/exchange.ts';
import { QR_STATUSES, type QrStatus, type RequesterFlag } from '../../flows/qr/record.ts';
import { authenticate, sessionOf } from '../auth.ts';
import { cookiesAreSecure } from '../console-session.ts';
import { LatchkeyError, forbidden, invalidRequest, notFound } from '../../core/errors.ts';
import {
  identifyLegacyPoller, legacyAuthCode, legacyCookieMaxAgeSeconds, legacyCookieName, splitLegacyAuthCode, type LegacyPoller,
} from '../../flows/qr/legacy.ts';
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
  // compat.octo_qr: the TangSengDaoDao web client's shapes (flows/qr/legacy.ts, docs/octo-compat.md §5).
  const octoQr = runtime.config.compat.octoQr;
  const legacyAudit = (request: FastifyRequest, result: 'ok' | 'fail', reason: string, uid: string | null = null, sid: string | null = null) =>
    runtime.audit.record({ type: 'qr_legacy', uid, sid, result, reason, context: auditContext(request) });
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
            qrcode: octoQr
              ? { type: 'string', description: 'compat.octo_qr: the URL the QR encodes' }
              : { type: 'object', properties: { svg: { type: 'string' }, text: { type: 'string' } } },
            ...(octoQr ? { qrcode_svg: { type: 'string', description: 'compat.octo_qr: the QR as SVG' } } : {}),
            poll_secret: { type: 'string' },
            expires_at: { type: 'integer', description: 'Unix time in milliseconds' },
          },
        },
        ...errorResponses(400, 429),
      },
    },
  }, async (request, reply) => {
    await runtime.limiter.hit('qr_create', request.ip, runtime.config.rateLimits.qrCreate);
    const { flag, device_id, device_name, device_model } = request.query;
    const context = auditContext(request);
    const requesterFlag: RequesterFlag = flag === '2' ? 2 : 1;
    // compat.octo: the QR is a URL the TangSengDaoDao apps open (GET /v1/qrcode/:uuid, routes/octo.ts).
    const origin = runtime.config.publicUrl ?? `${request.protocol}://${request.host}`;
    const binding = octoQr ? (cookieComesBack(request, origin) ? 'cookie' : 'address') : undefined;
    const created = await createLoginRequest(runtime, {
      flag: requesterFlag,
      device: { device_id: device_id ?? '', device_name: device_name ?? '', device_model: device_model ?? '' },
      ip: context.ip,
      user_agent: context.userAgent,
    }, runtime.config.compat.octo ? `${origin.replace(/\/+$/, '')}/v1/qrcode/` : undefined, binding);
    if (binding === undefined) return created;
    // The implicit poll secret of a client that polls without one: only this browser sends it back.
    void reply.setCookie(legacyCookieName(created.uuid), created.poll_secret, {
      path: '/v1/user/', httpOnly: true, sameSite: 'strict', secure: cookiesAreSecure(runtime.config.publicUrl, request),
      maxAge: legacyCookieMaxAgeSeconds(runtime),
    });
    await legacyAudit(request, 'ok', `create:${binding}`);
    return { uuid: created.uuid, qrcode: created.qrcode.text, qrcode_svg: created.qrcode.svg, poll_secret: created.poll_secret, expires_at: created.expires_at };
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
        200: {
          type: 'object',
          properties: { status: qrStatusSchema, auth_code: { type: 'string' }, uid: { type: 'string', description: 'compat.octo_qr: the scanner, once scanned' } },
          required: ['status'],
        },
        ...errorResponses(400, 404, 429),
      },
    },
  }, async (request, reply) => {
    const { uuid, poll_secret, last_status } = request.query;
    let pollSecret = poll_secret;
    if (octoQr && pollSecret === undefined) {
      const poller = await identifyLegacyPoller(runtime, uuid, legacyPoller(request, uuid));
      // The web client asks for a new QR on `expired`; it would retry an unknown uuid for ever.
      if (poller.kind === 'unknown') return { status: 'expired' };
      if (poller.kind === 'refused') {
        await legacyAudit(request, 'fail', `poll:${poller.reason}`);
        throw notFound('login request');
      }
      pollSecret = poller.pollSecret;
    }
    const view = await pollLoginStatus(runtime, {
      uuid,
      pollSecret,
      lastStatus: last_status,
      signal: AbortSignal.any([shutdown.signal, clientGone(reply)]),
      // Its network, not the address: one IPv6 host holds a whole /64 (rate_limits.ipv6_prefix).
      clientIp: runtime.limiter.requester(request.ip),
      slots: pollSlots,
      showScanner: octoQr,
    });
    if (!octoQr || view.auth_code === undefined) return view;
    await legacyAudit(request, 'ok', 'poll:authed');
    return { ...view, auth_code: legacyAuthCode(uuid, view.auth_code) };
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

  app.post<{ Params: { auth_code: string }; Body: { uuid?: string; poll_secret?: string } | undefined }>('/v1/user/login_authcode/:auth_code', {
    onRequest: noStore,
    schema: {
      tags: ['qr'],
      summary: 'Exchange an approved QR login\'s auth code for a session (once)',
      params: { type: 'object', required: ['auth_code'], properties: { auth_code: octoQr ? legacyCodeSchema : secretSchema } },
      // compat.octo_qr: the web client redeems with no body at all; the code names its request.
      ...(octoQr ? {} : {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['uuid', 'poll_secret'],
          properties: { uuid: uuidSchema, poll_secret: { type: 'string', maxLength: 128 } },
        },
      }),
      response: { 200: loginOrChallengeSchema, ...errorResponses(...BODY_ERRORS, 403, 404, 409, 410, 429) },
    },
  }, async (request) => {
    await runtime.limiter.hit('qr_exchange', request.ip, runtime.config.rateLimits.qrExchange);
    const body = octoQr ? exchangeBody(request.body) : request.body;
    const legacy = octoQr ? splitLegacyAuthCode(request.params.auth_code) : null;
    if (body?.uuid !== undefined && body.poll_secret !== undefined) {
      // latchkey's own exchange; a code in the legacy form must name the same request.
      if (legacy !== null && legacy.uuid !== body.uuid) throw notFound('auth code');
      const authCode = legacy?.code ?? request.params.auth_code;
      return exchangeAuthCode(runtime, { uuid: body.uuid, authCode, pollSecret: body.poll_secret }, auditContext(request));
    }
    if (legacy === null) throw invalidRequest('body', 'uuid and poll_secret are required');
    const poller = await identifyLegacyPoller(runtime, legacy.uuid, legacyPoller(request, legacy.uuid));
    if (poller.kind !== 'requester') {
      await legacyAudit(request, 'fail', `exchange:${poller.kind === 'refused' ? poller.reason : 'unknown'}`);
      throw notFound('auth code');
    }
    try {
      const response = await exchangeAuthCode(runtime, { uuid: legacy.uuid, authCode: legacy.code, pollSecret: poller.pollSecret }, auditContext(request));
      // The TangSengDaoDao web client knows no second step: an account with one signs in elsewhere.
      if (!('token' in response)) throw forbidden('this account has a second factor: sign in with a client that asks for it');
      await legacyAudit(request, 'ok', 'exchange', response.uid, response.sid);
      return response;
    } catch (error) {
      await legacyAudit(request, 'fail', `exchange:${error instanceof LatchkeyError ? error.code : 'error'}`);
      throw error;
    }
  });

  /** The requester as the legacy routes see it: its cookie for this request, its address and user agent. */
  function legacyPoller(request: FastifyRequest, uuid: string): LegacyPoller {
    const header = request.headers.cookie;
    const cookieSecret = header === undefined ? undefined : request.server.parseCookie(header)[legacyCookieName(uuid)];
    const { ip, userAgent } = auditContext(request);
    return { cookieSecret: cookieSecret === '' ? undefined : cookieSecret, ip, userAgent };
  }
}

/** compat.octo_qr: latchkey's own code, or `<uuid>.<code>` (flows/qr/legacy.ts). */
const legacyCodeSchema = { type: 'string', pattern: '^(?:[0-9a-f]{32}\\.)?[A-Za-z0-9_-]{43}$' } as const;

/** With compat.octo_qr the exchange's body is optional and checked here, as its schema would. */
function exchangeBody(body: unknown): { uuid?: string; poll_secret?: string } | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body !== 'object' || Array.isArray(body)) throw invalidRequest('body', 'must be an object');
  const { uuid, poll_secret, ...rest } = body as Record<string, unknown>;
  const extra = Object.keys(rest)[0];
  if (extra !== undefined) throw invalidRequest(`body.${extra}`, 'unknown field');
  if (uuid !== undefined && (typeof uuid !== 'string' || !/^[0-9a-f]{32}$/.test(uuid))) throw invalidRequest('body.uuid', 'must be 32 hex characters');
  if (poll_secret !== undefined && (typeof poll_secret !== 'string' || poll_secret.length > 128)) throw invalidRequest('body.poll_secret', 'must be a string of at most 128 characters');
  return { ...(uuid === undefined ? {} : { uuid }), ...(poll_secret === undefined ? {} : { poll_secret }) };
}

/**
 * Whether the browser will send loginuuid's cookie back (compat.octo_qr): only to the API's own
 * origin (SameSite=Strict, and fetch sends no cookie to another origin without credentials). A
 * request from another origin (Sec-Fetch-Site, else Origin) is bound to its address instead.
 */
function cookieComesBack(request: FastifyRequest, apiOrigin: string): boolean {
  const site = request.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return false;
  const from = request.headers.origin;
  if (typeof from !== 'string' || from === '') return true;
  return URL.canParse(from) && URL.canParse(apiOrigin) && new URL(from).origin === new URL(apiOrigin).origin;
}

/** Aborts when the client hangs up, so an abandoned long-poll stops holding its subscription. */
function clientGone(reply: FastifyReply): AbortSignal {
  const gone = new AbortController();
  reply.raw.once('close', () => gone.abort());
  return gone.signal;
}
