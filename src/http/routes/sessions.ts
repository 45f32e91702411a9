import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../../runtime/runtime.ts';
import { forgetDevice, revokeOtherSessions, revokeOwnSession, signOut } from '../../flows/session-actions.ts';
import { authenticate, sessionOf } from '../auth.ts';
import { stepUpCheck } from '../step-up.ts';
import { auditContext } from '../context.ts';
import { BODY_ERRORS, errorResponses, printableText, sessionSchema, sidParamSchema } from '../schemas.ts';

const deviceParamSchema = { ...printableText(128), minLength: 1 } as const;

export function sessionRoutes(app: FastifyInstance, runtime: Runtime): void {
  const requireSession = authenticate(runtime.sessions, runtime.metrics);
  const { sessions, accounts } = runtime;
  const stepUp = stepUpCheck(runtime);

  // With compat.octo it answers in octo-server's shapes instead (routes/octo.ts).
  if (!runtime.config.compat.octo) {
    app.post('/v1/user/quit', {
      onRequest: requireSession,
      schema: {
        tags: ['sessions'],
        summary: 'End this session only',
        description: '`im` (with an IM bridge): whether the IM server was told. "failed" still means the session is over; the device_quit is retried.',
        response: { 200: { type: 'object', properties: { status: { type: 'integer' }, im: { type: 'string', enum: ['ok', 'failed'] } } }, ...errorResponses(...BODY_ERRORS, 401) },
      },
    }, async (request) => {
      const { im } = await signOut(runtime, sessionOf(request), auditContext(request));
      return im === null ? { status: 200 } : { status: 200, im };
    });
  }

  app.get('/v1/user/sessions', {
    onRequest: requireSession,
    schema: { tags: ['sessions'], summary: 'This user\'s live sessions (never a token)', response: { 200: { type: 'array', items: sessionSchema }, ...errorResponses(401) } },
  }, async (request) => {
    const current = sessionOf(request);
    const listed = await sessions.list(current.uid);
    return listed.map((session) => ({ ...session, current: session.sid === current.sid }));
  });

  app.delete<{ Params: { sid: string } }>('/v1/user/sessions/:sid', {
    onRequest: requireSession,
    schema: {
      tags: ['sessions'],
      summary: 'Revoke one of this user\'s sessions',
      params: { type: 'object', required: ['sid'], properties: { sid: sidParamSchema } },
      response: { 200: { type: 'object', properties: { status: { type: 'integer' } } }, ...errorResponses(...BODY_ERRORS, 401, 404) },
    },
  }, async (request) => {
    await revokeOwnSession(runtime, sessionOf(request), request.params.sid, auditContext(request));
    return { status: 200 };
  });

  app.post('/v1/user/sessions/revoke_others', {
    onRequest: requireSession,
    schema: { tags: ['sessions'], summary: 'Revoke every other session of this user; needs step-up', response: { 200: { type: 'object', properties: { revoked: { type: 'integer' } } }, ...errorResponses(...BODY_ERRORS, 401, 403) } },
  }, async (request) => {
    await stepUp.require(sessionOf(request));
    return { revoked: await revokeOtherSessions(runtime, sessionOf(request), auditContext(request)) };
  });

  app.get('/v1/user/devices', {
    onRequest: requireSession,
    schema: {
      tags: ['sessions'],
      summary: 'Devices this user logged in from',
      response: {
        200: {
          type: 'array',
          items: {
            type: 'object',
            properties: { device_id: { type: 'string' }, device_name: { type: 'string' }, device_model: { type: 'string' }, last_login_at: { type: 'integer' } },
          },
        },
        ...errorResponses(401),
      },
    },
  }, async (request) => {
    const devices = await accounts.listDevices(sessionOf(request).uid);
    return devices.map((d) => ({ device_id: d.deviceId, device_name: d.name, device_model: d.model, last_login_at: d.lastLoginAt }));
  });

  app.delete<{ Params: { device_id: string } }>('/v1/user/devices/:device_id', {
    onRequest: requireSession,
    schema: {
      tags: ['sessions'],
      summary: 'Forget a device and revoke its sessions',
      params: { type: 'object', required: ['device_id'], properties: { device_id: deviceParamSchema } },
      response: { 200: { type: 'object', properties: { status: { type: 'integer' }, revoked: { type: 'integer' } } }, ...errorResponses(...BODY_ERRORS, 401, 404) },
    },
  }, async (request) => {
    const revoked = await forgetDevice(runtime, sessionOf(request), request.params.device_id, auditContext(request));
    return { status: 200, revoked };
  });
}
