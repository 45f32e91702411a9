import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../../runtime/runtime.ts';
import { notFound } from '../../core/errors.ts';
import { authenticate, sessionOf } from '../auth.ts';
import { auditContext } from '../context.ts';
import { BODY_ERRORS, errorResponses, printableText, sessionSchema, sidParamSchema } from '../schemas.ts';

const deviceParamSchema = { ...printableText(128), minLength: 1 } as const;

export function sessionRoutes(app: FastifyInstance, runtime: Runtime): void {
  const requireSession = authenticate(runtime.sessions, runtime.metrics);
  const { sessions, audit, metrics, accounts } = runtime;

  app.post('/v1/user/quit', {
    onRequest: requireSession,
    schema: {
      tags: ['sessions'],
      summary: 'End this session only',
      description: '`im` (with an IM bridge): whether the IM server was told. "failed" still means the session is over; the device_quit is retried.',
      response: { 200: { type: 'object', properties: { status: { type: 'integer' }, im: { type: 'string', enum: ['ok', 'failed'] } } }, ...errorResponses(...BODY_ERRORS, 401) },
    },
  }, async (request) => {
    const session = sessionOf(request);
    const { ended, im } = await sessions.logoutWithOutcome(session);
    metrics.logouts.inc({ result: !ended ? 'already_ended' : im === 'failed' ? 'im_fail' : 'ok' });
    await audit.record({
      type: 'logout', uid: session.uid, sid: session.sid, result: 'ok', reason: im === 'failed' ? 'im_failed' : null, context: auditContext(request),
    });
    return im === null ? { status: 200 } : { status: 200, im };
  });

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
    const current = sessionOf(request);
    if (!(await sessions.revoke(current.uid, request.params.sid, 'revoked'))) throw notFound('session');
    await audit.record({ type: 'revoke', uid: current.uid, sid: request.params.sid, result: 'ok', reason: 'user', context: auditContext(request) });
    return { status: 200 };
  });

  app.post('/v1/user/sessions/revoke_others', {
    onRequest: requireSession,
    schema: { tags: ['sessions'], summary: 'Revoke every other session of this user', response: { 200: { type: 'object', properties: { revoked: { type: 'integer' } } }, ...errorResponses(...BODY_ERRORS, 401) } },
  }, async (request) => {
    const current = sessionOf(request);
    const revoked = await sessions.revokeOthers(current.uid, current.sid);
    await audit.record({ type: 'revoke', uid: current.uid, sid: current.sid, result: 'ok', reason: `others:${revoked}`, context: auditContext(request) });
    return { revoked };
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
    const current = sessionOf(request);
    const deviceId = request.params.device_id;
    const revoked = await sessions.revokeDevice(current.uid, deviceId);
    const forgotten = await accounts.deleteDevice(current.uid, deviceId);
    if (!forgotten && revoked === 0) throw notFound('device');
    await audit.record({ type: 'revoke', uid: current.uid, sid: null, result: 'ok', reason: 'device', context: auditContext(request) });
    return { status: 200, revoked };
  });
}
