/**
 * octo-server's shapes on octo's routes, for unmodified TangSengDaoDao clients (`compat.octo`,
 * docs/octo-compat.md). Registered instead of latchkey's login, register and quit when compat is
 * on; every latchkey-only route stays as it is. What changes here:
 *
 * - `flag` is optional (0, as octo-server defaults it) and unknown body fields are ignored;
 * - `username` may also be octo's `00<zone><phone>` (`008613800000000`);
 * - business errors are HTTP 400 `{status: 400, msg: <Chinese>, code}` (octo-messages.ts); 401 only
 *   for a dead or missing token, which the clients take as "signed out";
 * - the login response carries octo's fields too (never a chat or lock-screen password hash);
 * - `POST /v1/user/pc/quit` and `GET /v1/user/devices/:device_id`.
 */
import { createHash } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Runtime } from '../../runtime/runtime.ts';
import type { DeviceFlag } from '../../core/sessions/policy.ts';
import type { Session } from '../../core/sessions/record.ts';
import type { User } from '../../ports/accounts.ts';
import { normalizeUsername } from '../../core/usernames.ts';
import { changePassword, passwordLogin, register } from '../../flows/password/password-flow.ts';
import { signOut } from '../../flows/session-actions.ts';
import { sendCode } from '../../flows/code/send-code.ts';
import { resetPassword } from '../../flows/code/password-reset.ts';
import { smsRegister } from '../../flows/octo/sms-register.ts';
import { codeGone, wrongCode } from '../../flows/code/consume-code.ts';
import { normalizeDestination, type Destination } from '../../core/destinations.ts';
import { LatchkeyError, forbidden, invalidRequest } from '../../core/errors.ts';
import { codeFlowDeps } from './codes.ts';
import { answerLoginRequest, scanLoginRequest } from '../../flows/qr/approval.ts';
import type { LoginResponse } from '../../flows/login-response.ts';
import { authenticate, sessionOf } from '../auth.ts';
import { auditContext, loginContext, type DeviceBody } from '../context.ts';
import { errorAnswer, send } from '../errors.ts';
import {
  BODY_ERRORS, emailSchema, errorResponses, flagSchema, loginResponseSchema, nameSchema, newPasswordSchema, passwordSchema, phoneSchema,
  printableText, usernameSchema, zoneSchema,
} from '../schemas.ts';
import { OCTO_MESSAGES, OCTO_ROUTE_MESSAGES, OCTO_STATUS } from './octo-messages.ts';

interface OctoLoginBody {
  username: string;
  password: string;
  flag?: DeviceFlag;
  device?: DeviceBody;
}

interface OctoRegisterBody {
  username?: string;
  password: string;
  /** octo's SMS registration: a `register` code sent to zone-phone by `sms/registercode`. */
  code?: string;
  name?: string;
  email?: string;
  zone?: string;
  phone?: string;
  flag?: DeviceFlag;
  device?: DeviceBody;
}

interface OctoResetBody {
  zone?: string;
  phone?: string;
  pwd?: string;
  channel?: 'sms' | 'email';
  to?: string;
  new_password?: string;
  code: string;
}

/** latchkey's one-time codes: six digits. */
const CODE_SCHEMA = { type: 'string', pattern: '^[0-9]{6}$' } as const;

/** octo's `{zone: "0086", phone}` as a latchkey destination (`86-138…`). */
function octoPhone(zone: string | undefined, phone: string | undefined): Destination {
  const digits = zone?.replace(/^0+/, '') ?? '';
  if (digits === '') throw invalidRequest('zone', 'zone is required, e.g. 0086');
  if (phone === undefined) throw invalidRequest('phone', 'phone is required');
  return normalizeDestination('sms', `${digits}-${phone}`);
}

/** The device the clients send; fields octo-server does not know are ignored, the known ones checked. */
const octoDeviceSchema = {
  type: 'object',
  properties: { device_id: printableText(128), device_name: printableText(128), device_model: printableText(128) },
} as const;

/** octo-server's `setting` of a new user (its user_setting defaults): notices on, nothing locked. */
export const OCTO_DEFAULT_SETTING = {
  search_by_phone: 1,
  search_by_short: 1,
  new_msg_notice: 1,
  msg_show_detail: 1,
  voice_on: 1,
  shock_on: 1,
  offline_protection: 0,
  device_lock: 0,
  mute_of_app: 0,
} as const;

const settingSchema = {
  type: 'object',
  properties: Object.fromEntries(Object.keys(OCTO_DEFAULT_SETTING).map((key) => [key, { type: 'integer' }])),
} as const;

/** latchkey's login response (docs/api.md §4) and octo-server's fields beside it. */
const octoLoginResponseSchema = {
  ...loginResponseSchema,
  properties: {
    ...loginResponseSchema.properties,
    app_id: { type: 'string' },
    short_no: { type: 'string' },
    zone: { type: 'string', description: 'octo-server style, `0086`; empty without a phone' },
    phone: { type: 'string' },
    sex: { type: 'integer' },
    avatar: { type: 'string' },
    category: { type: 'string' },
    short_status: { type: 'integer' },
    msg_expire_second: { type: 'integer' },
    lock_after_minute: { type: 'integer' },
    realname_verified: { type: 'integer' },
    setting: settingSchema,
  },
} as const;

/**
 * Errors in octo-server's envelope: the status the clients expect (OCTO_STATUS), a Chinese `msg`,
 * latchkey's `code` (and `details`) kept for whoever reads them.
 */
export function octoErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { body, retryAfter } = errorAnswer(error, request);
  const status = OCTO_STATUS[body.code];
  return send(reply, { ...body, status, msg: octoMessage(body.code, body.msg, body.details) }, retryAfter);
}

const WRONG_CODE_MESSAGE = wrongCode().message;
const CODE_GONE_MESSAGE = codeGone().message;

function octoMessage(code: keyof typeof OCTO_MESSAGES, message: string, details: Record<string, unknown> | undefined): string {
  const field = details?.field;
  if (code === 'invalid_request' && (field === 'password' || field === 'new_password')) return OCTO_ROUTE_MESSAGES.passwordPolicy;
  if (code === 'conflict' && field === 'username') return OCTO_ROUTE_MESSAGES.usernameTaken;
  if (code === 'conflict' && field === 'email') return OCTO_ROUTE_MESSAGES.emailTaken;
  if (code === 'conflict' && field === 'phone') return OCTO_ROUTE_MESSAGES.phoneTaken;
  if (code === 'not_found' && field === 'device') return OCTO_ROUTE_MESSAGES.deviceNotFound;
  if (code === 'invalid_credentials' && message === WRONG_CODE_MESSAGE) return OCTO_ROUTE_MESSAGES.wrongCode;
  if (code === 'invalid_credentials' && field === 'password') return OCTO_ROUTE_MESSAGES.oldPasswordWrong;
  if (code === 'expired' && message === CODE_GONE_MESSAGE) return OCTO_ROUTE_MESSAGES.codeGone;
  if (code === 'forbidden' && field === undefined && message.startsWith('registration')) return OCTO_ROUTE_MESSAGES.registerOff;
  return OCTO_MESSAGES[code];
}

/**
 * octo's `00<zone><phone>` (`008613800000000`) as latchkey's `zone-phone`: zones are 1 to 4 digits
 * and country codes are prefix-free, so at most one split names an account; the first that does is
 * taken. Anything else is left as it is (a username, an email, a `zone-phone`).
 */
async function resolveOctoUsername(runtime: Runtime, username: string): Promise<string> {
  const match = /^00(\d{5,24})$/.exec(username);
  const digits = match?.[1];
  if (digits === undefined) return username;
  for (let zoneLength = 1; zoneLength <= 4; zoneLength++) {
    const zone = digits.slice(0, zoneLength);
    const phone = digits.slice(zoneLength);
    if (zone.startsWith('0') || phone.length < 4) continue;
    if ((await runtime.accounts.findByPhone(zone, phone)) !== null) return `${zone}-${phone}`;
  }
  return username;
}

/** The login response with octo-server's fields (never `chat_pwd` or `lock_screen_pwd`). */
async function octoLoginResponse(runtime: Runtime, request: FastifyRequest, response: LoginResponse) {
  const user: User | null = await runtime.accounts.findByUid(response.uid);
  const appId = request.headers.appid;
  return {
    ...response,
    app_id: typeof appId === 'string' ? appId.slice(0, 64) : '',
    short_no: response.username,
    zone: user?.zone == null || user.phone === null ? '' : `00${user.zone}`,
    phone: user?.phone ?? '',
    sex: 0,
    avatar: `users/${response.uid}/avatar`,
    category: '',
    short_status: 0,
    msg_expire_second: 0,
    lock_after_minute: 0,
    realname_verified: 0,
    setting: { ...OCTO_DEFAULT_SETTING },
  };
}

/**
 * A stable integer per (user, device): octo-server's device row id, which the apps give WuKongIM as
 * their client device id. latchkey keys devices by (uid, device_id), so the id is derived from that
 * pair: 31 bits of its SHA-256, never 0.
 */
export function octoDeviceNumber(uid: string, deviceId: string): number {
  const digest = createHash('sha256').update(`${uid}\u0000${deviceId}`).digest();
  return (digest.readUInt32BE(0) & 0x7fffffff) || 1;
}

/** Ends these sessions' mirror keys in octo-server's Redis, or 503: a sign-out is over only once they are gone. */
async function requireMirrorRemoved(runtime: Runtime, sessions: readonly Pick<Session, 'sid' | 'uid'>[]): Promise<void> {
  const mirror = runtime.octoMirror;
  if (mirror === null) return;
  const removed = await Promise.all(sessions.map((session) => mirror.ended(session)));
  if (removed.every(Boolean)) return;
  const retryAfter = Math.ceil((runtime.config.compat.octoRedis?.retryIntervalMs ?? 1000) / 1000);
  throw new LatchkeyError('upstream_unavailable', 'the session ended here; octo-server has not been told yet, and will be', undefined, retryAfter);
}

export function octoRoutes(app: FastifyInstance, runtime: Runtime): void {
  if (!runtime.config.compat.octo) return;
  const requireSession = authenticate(runtime.sessions, runtime.metrics);
  const errorHandler = octoErrorHandler;
  const codes = codeFlowDeps(runtime, app.log);
  const phoneBody = {
    type: 'object',
    required: ['zone', 'phone'],
    properties: { zone: zoneSchema, phone: phoneSchema },
  } as const;

  app.post<{ Body: { zone: string; phone: string } }>('/v1/user/sms/registercode', {
    errorHandler,
    schema: {
      tags: ['octo'],
      summary: 'Send a registration code by SMS (compat.octo); `exist` is always 0: whether a number has an account is told only to the holder of a right code',
      body: phoneBody,
      response: { 200: { type: 'object', properties: { status: { type: 'integer' }, exist: { type: 'integer' }, resend_after: { type: 'integer' } } }, ...errorResponses(...BODY_ERRORS, 429) },
    },
  }, async (request) => {
    const { resend_after } = await sendCode(codes, 'register', octoPhone(request.body.zone, request.body.phone), auditContext(request));
    return { status: 200, exist: 0, resend_after };
  });

  app.post<{ Body: { zone: string; phone: string } }>('/v1/user/sms/forgetpwd', {
    errorHandler,
    schema: {
      tags: ['octo'],
      summary: 'Send a password reset code by SMS (compat.octo); the same answer whether or not the number has an account',
      body: phoneBody,
      response: { 200: { type: 'object', properties: { status: { type: 'integer' }, resend_after: { type: 'integer' } } }, ...errorResponses(...BODY_ERRORS, 429) },
    },
  }, async (request) => {
    const { resend_after } = await sendCode(codes, 'reset_password', octoPhone(request.body.zone, request.body.phone), auditContext(request));
    return { status: 200, resend_after };
  });

  app.post<{ Body: OctoResetBody }>('/v1/user/pwdforget', {
    errorHandler,
    schema: {
      tags: ['octo'],
      summary: 'Set a new password with a reset_password code (compat.octo): octo\'s `{zone, phone, code, pwd}` or latchkey\'s `{channel, to, code, new_password}`; every session of the account ends',
      body: {
        type: 'object',
        required: ['code'],
        properties: {
          zone: zoneSchema, phone: phoneSchema, pwd: newPasswordSchema,
          channel: { type: 'string', enum: ['sms', 'email'] }, to: { type: 'string', minLength: 1, maxLength: 254 }, new_password: newPasswordSchema,
          code: CODE_SCHEMA,
        },
      },
      response: { 200: { type: 'object', properties: { status: { type: 'integer' } } }, ...errorResponses(...BODY_ERRORS, 429) },
    },
  }, async (request) => {
    await runtime.limiter.hit('code_login', request.ip, runtime.config.rateLimits.login);
    const { zone, phone, pwd, channel, to, new_password: newPassword, code } = request.body;
    let destination: Destination;
    let password: string | undefined;
    if (zone !== undefined || phone !== undefined || pwd !== undefined) {
      destination = octoPhone(zone, phone);
      password = pwd;
    } else {
      if (channel === undefined || to === undefined) throw invalidRequest('zone', 'zone, phone, code and pwd are required');
      destination = normalizeDestination(channel, to);
      if (channel === 'sms' && !/^\d{1,6}-\d{4,20}$/.test(destination.to)) throw invalidRequest('to', 'to must be zone-phone');
      password = newPassword;
    }
    if (password === undefined) throw invalidRequest('pwd', 'pwd is required');
    await resetPassword(codes, destination, code, password, auditContext(request));
    return { status: 200 };
  });

  // A wrong current password must not be a 401: the clients sign out on any 401.
  app.put<{ Body: { password: string; new_password: string; revoke_other_sessions?: boolean } }>('/v1/user/updatepassword', {
    errorHandler,
    onRequest: requireSession,
    schema: {
      tags: ['octo'],
      summary: 'Change the password (compat.octo): a wrong current password is 400 旧密码错误; every other session ends unless told otherwise',
      body: {
        type: 'object',
        required: ['password', 'new_password'],
        properties: { password: passwordSchema, new_password: newPasswordSchema, revoke_other_sessions: { type: 'boolean' } },
      },
      response: { 200: { type: 'object', properties: { status: { type: 'integer' } } }, ...errorResponses(...BODY_ERRORS, 401, 429) },
    },
  }, async (request) => {
    const { password, new_password: newPassword, revoke_other_sessions: revokeOtherSessions } = request.body;
    try {
      await changePassword(runtime, sessionOf(request), { password, newPassword, revokeOtherSessions: revokeOtherSessions ?? true }, auditContext(request));
    } catch (error) {
      if (error instanceof LatchkeyError && error.code === 'invalid_credentials') {
        throw new LatchkeyError('invalid_credentials', 'the current password is wrong', { field: 'password' });
      }
      throw error;
    }
    return { status: 200 };
  });

  app.post<{ Body: OctoLoginBody }>('/v1/user/login', {
    errorHandler,
    schema: {
      tags: ['octo'],
      summary: 'Log in (compat.octo): octo-server\'s shapes; `username` may also be `00<zone><phone>`',
      body: {
        type: 'object',
        required: ['username', 'password'],
        properties: {
          username: { type: 'string', minLength: 1, maxLength: 254, pattern: '^[^\\p{Cc}]+$' },
          password: passwordSchema,
          flag: flagSchema,
          device: octoDeviceSchema,
        },
      },
      response: { 200: octoLoginResponseSchema, ...errorResponses(...BODY_ERRORS, 401, 429) },
    },
  }, async (request) => {
    await runtime.limiter.hit('login', request.ip, runtime.config.rateLimits.login);
    const { username, password, flag, device } = request.body;
    const identifier = await resolveOctoUsername(runtime, username);
    const response = await passwordLogin(runtime, identifier, password, loginContext(request, flag ?? 0, device));
    // octo-server's clients know no second step: an account with one signs in with a client that does.
    if ('mfa_required' in response) throw forbidden('this account has a second factor: sign in with a client that asks for it');
    return octoLoginResponse(runtime, request, response);
  });

  app.post<{ Body: OctoRegisterBody }>('/v1/user/register', {
    errorHandler,
    preValidation: async (request) => {
      const body = request.body;
      if (body !== null && typeof body === 'object' && 'username' in body && typeof body.username === 'string') {
        body.username = normalizeUsername(body.username);
      }
    },
    schema: {
      tags: ['octo'],
      summary: 'Register and log in (compat.octo): octo-server\'s shapes',
      body: {
        type: 'object',
        required: ['password'],
        properties: {
          username: usernameSchema, password: newPasswordSchema, name: nameSchema, email: emailSchema,
          zone: zoneSchema, phone: phoneSchema, flag: flagSchema, device: octoDeviceSchema, code: CODE_SCHEMA,
        },
      },
      response: { 200: octoLoginResponseSchema, ...errorResponses(...BODY_ERRORS, 429) },
    },
  }, async (request) => {
    await runtime.limiter.hit('register', request.ip, runtime.config.rateLimits.register);
    const { username, password, name, email, zone, phone, flag, device, code } = request.body;
    const context = loginContext(request, flag ?? 0, device);
    if (code !== undefined) {
      // The apps' registration: `{zone, phone, code, password, invite_code, device}`.
      const response = await smsRegister(codes, octoPhone(zone, phone), code, password, context);
      return octoLoginResponse(runtime, request, response);
    }
    if (username === undefined) throw invalidRequest('username', 'username is required (or zone, phone and code)');
    // octo's zone is `0086`; latchkey stores `86`.
    const zoneDigits = zone?.replace(/^0+/, '');
    const response = await register(runtime, { username, password, name, email, zone: zoneDigits === '' ? undefined : zoneDigits, phone }, context);
    return octoLoginResponse(runtime, request, response);
  });

  app.post('/v1/user/quit', {
    errorHandler,
    onRequest: requireSession,
    schema: {
      tags: ['octo'],
      summary: 'End this session (compat.octo); with the token mirror, only once octo-server\'s key is gone',
      response: { 200: { type: 'object', properties: { status: { type: 'integer' }, im: { type: 'string', enum: ['ok', 'failed'] } } }, ...errorResponses(...BODY_ERRORS, 401) },
    },
  }, async (request) => {
    const session = sessionOf(request);
    const { im } = await signOut(runtime, session, auditContext(request));
    await requireMirrorRemoved(runtime, [session]);
    return im === null ? { status: 200 } : { status: 200, im };
  });

  app.post('/v1/user/pc/quit', {
    errorHandler,
    onRequest: requireSession,
    schema: {
      tags: ['octo'],
      summary: 'Sign out every Web and PC session of this user (compat.octo): "log out the computer" from the phone',
      response: { 200: { type: 'object', properties: { status: { type: 'integer' }, revoked: { type: 'integer' } } }, ...errorResponses(...BODY_ERRORS, 401) },
    },
  }, async (request) => {
    const current = sessionOf(request);
    // As octo-server's pc/quit: every Web and PC device of the user, the caller's own if it is one.
    const targets = (await runtime.sessions.list(current.uid)).filter((s) => s.device_flag !== 0);
    const ended = await Promise.all(targets.map((s) => runtime.sessions.revoke(current.uid, s.sid, 'revoked')));
    const revoked = ended.filter(Boolean).length;
    await runtime.audit.record({ type: 'revoke', uid: current.uid, sid: current.sid, result: 'ok', reason: `pc_quit:${revoked}`, context: auditContext(request) });
    await requireMirrorRemoved(runtime, targets);
    return { status: 200, revoked };
  });

  app.get<{ Params: { device_id: string } }>('/v1/user/devices/:device_id', {
    errorHandler,
    onRequest: requireSession,
    schema: {
      tags: ['octo'],
      summary: 'One device of this user (compat.octo), with octo-server\'s integer `id` (the apps\' IM client device id)',
      params: { type: 'object', required: ['device_id'], properties: { device_id: { ...printableText(128), minLength: 1 } } },
      response: {
        200: {
          type: 'object',
          properties: {
            id: { type: 'integer' }, device_id: { type: 'string' }, device_name: { type: 'string' }, device_model: { type: 'string' },
            last_login: { type: 'string', description: 'yyyy-MM-dd HH:mm (UTC)' }, last_login_at: { type: 'integer' }, self: { type: 'integer' },
          },
        },
        ...errorResponses(401),
      },
    },
  }, async (request) => {
    const session = sessionOf(request);
    const { device_id: deviceId } = request.params;
    const device = (await runtime.accounts.listDevices(session.uid)).find((d) => d.deviceId === deviceId);
    if (device === undefined) throw new LatchkeyError('not_found', 'device not found', { field: 'device' });
    return {
      id: octoDeviceNumber(session.uid, deviceId),
      device_id: device.deviceId,
      device_name: device.name,
      device_model: device.model,
      last_login: new Date(device.lastLoginAt).toISOString().slice(0, 16).replace('T', ' '),
      last_login_at: device.lastLoginAt,
      self: session.device_id === deviceId ? 1 : 0,
    };
  });

  // The apps' side of QR login. The QR shows `<api>/v1/qrcode/<uuid>` (routes/qr.ts with compat on);
  // scanning and approving are latchkey's (only an APP session, only the session that scanned may
  // answer); the browser still polls and exchanges with its poll secret (docs/octo-compat.md §5).
  const uuidParam = { type: 'string', pattern: '^[0-9a-f]{32}$' } as const;
  app.get<{ Params: { uuid: string } }>('/v1/qrcode/:uuid', {
    errorHandler,
    onRequest: requireSession,
    schema: {
      tags: ['octo'],
      summary: 'The app opened a login QR (compat.octo): scans it, and answers octo\'s `loginConfirm` with the request\'s handle as `auth_code`',
      params: { type: 'object', required: ['uuid'], properties: { uuid: uuidParam } },
      response: {
        200: {
          type: 'object',
          properties: {
            forward: { type: 'string' },
            type: { type: 'string' },
            data: { type: 'object', properties: { auth_code: { type: 'string' }, pub_key: { type: 'string' } } },
            requester: {
              type: 'object',
              properties: { device_name: { type: 'string' }, device_model: { type: 'string' }, ip: { type: 'string' }, flag: { type: 'integer' }, user_agent: { type: 'string' } },
            },
          },
        },
        ...errorResponses(401),
      },
    },
  }, async (request) => {
    const { uuid } = request.params;
    const scanned = await legacyAudited(request, 'scan', () => scanLoginRequest(runtime, sessionOf(request), uuid, auditContext(request)));
    // The app sends `auth_code` back to grant_login: here it is the request's public uuid, never a
    // secret (the code the browser exchanges is derived from its poll secret, flows/qr/secrets.ts).
    return { forward: 'native', type: 'loginConfirm', data: { auth_code: uuid, pub_key: '' }, requester: scanned.requester };
  });

  app.get<{ Querystring: { auth_code: string; encrypt?: string } }>('/v1/user/grant_login', {
    errorHandler,
    onRequest: requireSession,
    schema: {
      tags: ['octo'],
      summary: 'The app approves a scanned login QR (compat.octo): `auth_code` is what GET /v1/qrcode/:uuid gave',
      querystring: { type: 'object', required: ['auth_code'], properties: { auth_code: uuidParam, encrypt: { type: 'string', maxLength: 2048 } } },
      response: { 200: { type: 'object', properties: { status: { type: 'integer' } } }, ...errorResponses(401) },
    },
  }, async (request) => {
    await legacyAudited(request, 'grant', () => answerLoginRequest(runtime, sessionOf(request), request.query.auth_code, true, auditContext(request)));
    return { status: 200 };
  });

  /** compat.octo_qr: each step of the legacy QR flow is audited as `qr_legacy` too (routes/qr.ts). */
  async function legacyAudited<T>(request: FastifyRequest, step: string, run: () => Promise<T>): Promise<T> {
    if (!runtime.config.compat.octoQr) return run();
    const { uid, sid } = sessionOf(request);
    try {
      const result = await run();
      await runtime.audit.record({ type: 'qr_legacy', uid, sid, result: 'ok', reason: step, context: auditContext(request) });
      return result;
    } catch (error) {
      const reason = `${step}:${error instanceof LatchkeyError ? error.code : 'error'}`;
      await runtime.audit.record({ type: 'qr_legacy', uid, sid, result: 'fail', reason, context: auditContext(request) });
      throw error;
    }
  }
}
