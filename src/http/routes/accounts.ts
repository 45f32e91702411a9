import type { FastifyInstance, FastifyRequest } from 'fastify';
import { normalizeUsername } from '../../core/usernames.ts';
import type { Runtime } from '../../runtime/runtime.ts';
import type { DeviceFlag } from '../../core/sessions/policy.ts';
import { changePassword, passwordLogin, register } from '../../flows/password/password-flow.ts';
import { notFound } from '../../core/errors.ts';
import { CODE_CHANNELS, type CodeChannel } from '../../ports/sender.ts';
import { verifyAddress, type VerifyAddressDeps } from '../../flows/code/verify-address.ts';
import { authenticate, sessionOf } from '../auth.ts';
import { auditContext, loginContext, type DeviceBody } from '../context.ts';
import {
  BODY_ERRORS, deviceSchema, emailSchema, errorResponses, flagSchema, loginResponseSchema, loginOrChallengeSchema, nameSchema, okSchema, newPasswordSchema, passwordSchema,
  phoneSchema, sessionFields, usernameSchema, zoneSchema,
} from '../schemas.ts';

interface RegisterBody {
  username: string;
  password: string;
  name?: string;
  email?: string;
  zone?: string;
  phone?: string;
  flag?: DeviceFlag;
  device?: DeviceBody;
}

interface LoginBody {
  username: string;
  password: string;
  flag: DeviceFlag;
  device?: DeviceBody;
}

interface VerifyAddressBody {
  channel: CodeChannel;
  to?: string;
  code: string;
}

interface UpdatePasswordBody {
  password: string;
  new_password: string;
  revoke_other_sessions?: boolean;
}

const currentSchema = {
  type: 'object',
  properties: {
    uid: { type: 'string' },
    username: { type: 'string' },
    name: { type: 'string' },
    email: { type: 'string' },
    phone: { type: 'string' },
    email_verified: { type: 'boolean', description: 'a code sent to the email was entered (or a trusted IdP vouched for it); until then code login, reset and SSO linking ignore it' },
    phone_verified: { type: 'boolean', description: 'a code sent to the number was entered; until then code login and reset ignore it' },
    role: { type: 'string' },
    session: { type: 'object', properties: sessionFields },
  },
} as const;

/**
 * Runs before validation, so the schema checks the stored form: `rene\u0301e` (an accent typed as
 * a combining mark) is the same name as `renée`, and fullwidth `ａｌｉｃｅ` is checked as `alice`.
 */
async function normalizeUsernameField(request: FastifyRequest): Promise<void> {
  const body = request.body;
  if (body !== null && typeof body === 'object' && 'username' in body && typeof body.username === 'string') {
    body.username = normalizeUsername(body.username);
  }
}

export function accountRoutes(app: FastifyInstance, runtime: Runtime): void {
  const requireSession = authenticate(runtime.sessions, runtime.metrics);

  // With compat.octo these two answer in octo-server's shapes instead (routes/octo.ts).
  if (!runtime.config.compat.octo) {
    app.post<{ Body: RegisterBody }>('/v1/user/register', {
      preValidation: normalizeUsernameField,
      schema: {
        tags: ['accounts'],
        summary: 'Register an account and log in',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['username', 'password'],
          properties: {
            username: usernameSchema, password: newPasswordSchema, name: nameSchema, email: emailSchema,
            zone: zoneSchema, phone: phoneSchema, flag: flagSchema, device: deviceSchema,
          },
        },
        response: { 201: loginResponseSchema, ...errorResponses(...BODY_ERRORS, 403, 409, 429) },
      },
    }, async (request, reply) => {
      await runtime.limiter.hit('register', request.ip, runtime.config.rateLimits.register);
      const body = request.body;
      const response = await register(runtime, body, loginContext(request, body.flag ?? 0, body.device));
      return reply.code(201).send(response);
    });

    app.post<{ Body: LoginBody }>('/v1/user/login', {
      schema: {
        tags: ['accounts'],
        summary: 'Log in with a username, email or zone-phone and a password',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['username', 'password', 'flag'],
          properties: {
            // A username, an email or a zone-phone: none has a control character (a NUL was a 500 on PostgreSQL).
            username: { type: 'string', minLength: 1, maxLength: 254, pattern: '^[^\\p{Cc}]+$' },
            password: passwordSchema,
            flag: flagSchema,
            device: deviceSchema,
          },
        },
        response: { 200: loginOrChallengeSchema, ...errorResponses(...BODY_ERRORS, 401, 403, 409, 429) },
      },
    }, async (request) => {
      await runtime.limiter.hit('login', request.ip, runtime.config.rateLimits.login);
      const { username, password, flag, device } = request.body;
      return passwordLogin(runtime, username, password, loginContext(request, flag, device));
    });
  }

  app.get('/v1/user/current', {
    onRequest: requireSession,
    schema: { tags: ['accounts'], summary: 'The signed-in user and this session', response: { 200: currentSchema, ...errorResponses(401, 404) } },
  }, async (request) => {
    const session = sessionOf(request);
    const user = await runtime.profiles.get(session.uid);
    if (user === null) throw notFound('user');
    return {
      uid: user.uid,
      username: user.username,
      name: user.name,
      email: user.email ?? undefined,
      phone: user.phone === null ? undefined : `${user.zone ?? ''}-${user.phone}`,
      email_verified: user.emailVerified,
      phone_verified: user.phoneVerified,
      role: user.role,
      session,
    };
  });

  const verifyDeps: VerifyAddressDeps = {
    accounts: runtime.accounts, codes: runtime.codes, audit: runtime.audit, clock: runtime.clock,
  };
  app.post<{ Body: VerifyAddressBody }>('/v1/user/verify_address', {
    onRequest: requireSession,
    schema: {
      tags: ['accounts'],
      summary: "Prove the account's email or phone with a `verify` code from POST /v1/user/code/send; only the account's own address",
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['channel', 'code'],
        properties: {
          channel: { type: 'string', enum: CODE_CHANNELS },
          to: { type: 'string', minLength: 1, maxLength: 254, description: "optional: must be the account's address on that channel (email, or zone-phone)" },
          code: { type: 'string', pattern: '^[0-9]{6}$' },
        },
      },
      response: { 200: { type: 'object', properties: { status: { type: 'integer' }, verified: { type: 'boolean' } } }, ...errorResponses(...BODY_ERRORS, 401, 404, 409, 410, 429) },
    },
  }, async (request) => {
    // Five tries per code; this per-IP limit (shared with code login) slows spraying codes.
    await runtime.limiter.hit('code_login', request.ip, runtime.config.rateLimits.login);
    const { channel, to, code } = request.body;
    const uid = sessionOf(request).uid;
    const answer = await verifyAddress(verifyDeps, uid, channel, to, code, auditContext(request));
    runtime.profiles.forget(uid);
    return answer;
  });

  // With compat.octo it answers in octo-server's envelope instead (routes/octo.ts): a wrong
  // current password is 400 there, since octo's clients sign out on any 401.
  if (runtime.config.compat.octo) return;
  app.put<{ Body: UpdatePasswordBody }>('/v1/user/updatepassword', {
    onRequest: requireSession,
    schema: {
      tags: ['accounts'],
      summary: 'Change the password; by default every other session is signed out',
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['password', 'new_password'],
        properties: { password: passwordSchema, new_password: newPasswordSchema, revoke_other_sessions: { type: 'boolean' } },
      },
      response: { 200: okSchema, ...errorResponses(...BODY_ERRORS, 401, 403, 409, 429) },
    },
  }, async (request) => {
    const { password, new_password, revoke_other_sessions } = request.body;
    await changePassword(runtime, sessionOf(request), {
      password, newPassword: new_password, revokeOtherSessions: revoke_other_sessions ?? true,
    }, auditContext(request));
    return { status: 200 };
  });
}
