import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../../runtime.ts';
import type { DeviceFlag } from '../../core/sessions/policy.ts';
import { changePassword, passwordLogin, register } from '../../flows/password/password-flow.ts';
import { notFound } from '../../core/errors.ts';
import { authenticate, sessionOf } from '../auth.ts';
import { auditContext, loginContext, type DeviceBody } from '../context.ts';
import {
  deviceSchema, emailSchema, flagSchema, loginResponseSchema, nameSchema, okSchema, passwordSchema,
  phoneSchema, usernameSchema, zoneSchema,
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
    role: { type: 'string' },
    session: {
      type: 'object',
      properties: {
        sid: { type: 'string' },
        device_flag: { type: 'integer' },
        device_id: { type: 'string' },
        device_name: { type: 'string' },
        device_model: { type: 'string' },
        method: { type: 'string' },
        created_at: { type: 'integer' },
        expires_at: { type: 'integer' },
      },
    },
  },
} as const;

export function accountRoutes(app: FastifyInstance, runtime: Runtime): void {
  const requireSession = authenticate(runtime.sessions, runtime.metrics);

  app.post<{ Body: RegisterBody }>('/v1/user/register', {
    schema: {
      tags: ['accounts'],
      summary: 'Register an account and log in',
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['username', 'password'],
        properties: {
          username: usernameSchema, password: passwordSchema, name: nameSchema, email: emailSchema,
          zone: zoneSchema, phone: phoneSchema, flag: flagSchema, device: deviceSchema,
        },
      },
      response: { 201: loginResponseSchema },
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
          username: { type: 'string', minLength: 1, maxLength: 254 },
          password: passwordSchema,
          flag: flagSchema,
          device: deviceSchema,
        },
      },
      response: { 200: loginResponseSchema },
    },
  }, async (request) => {
    await runtime.limiter.hit('login', request.ip, runtime.config.rateLimits.login);
    const { username, password, flag, device } = request.body;
    return passwordLogin(runtime, username, password, loginContext(request, flag, device));
  });

  app.get('/v1/user/current', {
    onRequest: requireSession,
    schema: { tags: ['accounts'], summary: 'The signed-in user and this session', response: { 200: currentSchema } },
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
      role: user.role,
      session,
    };
  });

  app.put<{ Body: UpdatePasswordBody }>('/v1/user/updatepassword', {
    onRequest: requireSession,
    schema: {
      tags: ['accounts'],
      summary: 'Change the password; by default every other session is signed out',
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['password', 'new_password'],
        properties: { password: passwordSchema, new_password: passwordSchema, revoke_other_sessions: { type: 'boolean' } },
      },
      response: { 200: okSchema },
    },
  }, async (request) => {
    const { password, new_password, revoke_other_sessions } = request.body;
    await changePassword(runtime, sessionOf(request), {
      password, newPassword: new_password, revokeOtherSessions: revoke_other_sessions ?? true,
    }, auditContext(request));
    return { status: 200 };
  });
}
