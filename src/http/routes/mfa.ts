/**
 * Second factors (docs/api.md, docs/design.md §4, second factors): enrolling TOTP, recovery codes,
 * the second step of a login, and step-up. Enrolling or removing a factor needs a session that
 * showed a factor within `mfa.step_up_seconds`: with only a stolen token, a thief could otherwise
 * turn TOTP on and lock the owner out, or turn it off.
 */
import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../../runtime/runtime.ts';
import { disableTotp, enableTotp, regenerateRecoveryCodes, secondFactorStatus, setupTotp } from '../../flows/mfa/second-factors.ts';
import { proveSecondFactor, verifySecondStep } from '../../flows/mfa/second-step.ts';
import { markSteppedUp, type StepUpMethod } from '../../flows/mfa/step-up.ts';
import { stepUpCheck } from '../step-up.ts';
import { proveOwnPassword } from '../../flows/password/password-flow.ts';
import { LatchkeyError, invalidRequest, notFound } from '../../core/errors.ts';
import { authenticate, sessionOf } from '../auth.ts';
import { auditContext } from '../context.ts';
import { BODY_ERRORS, errorResponses, loginResponseSchema, okSchema, passwordSchema } from '../schemas.ts';

const codeSchema = { type: 'string', minLength: 1, maxLength: 32, pattern: '^[^\\p{Cc}]+$' } as const;
const recoveryCodesSchema = { type: 'object', properties: { recovery_codes: { type: 'array', items: { type: 'string' } } } } as const;

export function mfaRoutes(app: FastifyInstance, runtime: Runtime): void {
  const requireSession = authenticate(runtime.sessions, runtime.metrics);
  const { secondFactors, accounts } = runtime;
  const stepUp = stepUpCheck(runtime);

  app.get('/v1/user/mfa', {
    onRequest: requireSession,
    schema: {
      tags: ['mfa'],
      summary: 'This account\'s second factors',
      response: {
        200: {
          type: 'object',
          properties: {
            totp: { type: 'boolean' },
            recovery_codes_left: { type: 'integer' },
            passkeys: { type: 'integer' },
            totp_available: { type: 'boolean', description: 'false when the server has no key to seal TOTP secrets with' },
          },
        },
        ...errorResponses(401),
      },
    },
  }, async (request) => {
    const { uid } = sessionOf(request);
    const [status, passkeys] = await Promise.all([secondFactorStatus(secondFactors, uid), runtime.passkeys.repo.count(uid)]);
    return { ...status, passkeys, totp_available: secondFactors.cipher !== null };
  });

  app.post('/v1/user/mfa/totp/setup', {
    onRequest: requireSession,
    schema: {
      tags: ['mfa'],
      summary: 'Draw a TOTP secret (not active until enabled with a code from it); needs step-up',
      response: {
        200: { type: 'object', properties: { secret: { type: 'string' }, otpauth_url: { type: 'string' }, qrcode_svg: { type: 'string' } } },
        ...errorResponses(...BODY_ERRORS, 401, 403, 404, 409),
      },
    },
  }, async (request) => {
    const session = sessionOf(request);
    await stepUp.require(session);
    const user = await accounts.findByUid(session.uid);
    if (user === null) throw notFound('user');
    return setupTotp(secondFactors, user);
  });

  app.post<{ Body: { code: string } }>('/v1/user/mfa/totp/enable', {
    onRequest: requireSession,
    schema: {
      tags: ['mfa'],
      summary: 'Turn TOTP on with a code from the secret just set up; answers the 10 recovery codes, shown this once',
      body: { type: 'object', additionalProperties: false, required: ['code'], properties: { code: codeSchema } },
      response: { 200: recoveryCodesSchema, ...errorResponses(...BODY_ERRORS, 401, 403, 404, 409, 429) },
    },
  }, async (request) => {
    const session = sessionOf(request);
    await stepUp.require(session);
    const codes = await enableTotp(secondFactors, session.uid, request.body.code, auditContext(request)).catch((error: unknown) => {
      runtime.metrics.mfa.inc({ event: 'enrol', method: 'totp', result: 'fail' });
      throw error;
    });
    runtime.metrics.mfa.inc({ event: 'enrol', method: 'totp', result: 'ok' });
    return { recovery_codes: codes };
  });

  app.delete('/v1/user/mfa/totp', {
    onRequest: requireSession,
    schema: { tags: ['mfa'], summary: 'Turn TOTP off (and its recovery codes); needs step-up', response: { 200: okSchema, ...errorResponses(401, 403, 404) } },
  }, async (request) => {
    const session = sessionOf(request);
    await stepUp.require(session);
    if (!(await disableTotp(secondFactors, session.uid, auditContext(request)))) throw notFound('TOTP factor');
    runtime.metrics.mfa.inc({ event: 'remove', method: 'totp', result: 'ok' });
    return { status: 200 };
  });

  app.post('/v1/user/mfa/recovery_codes', {
    onRequest: requireSession,
    schema: { tags: ['mfa'], summary: 'New recovery codes (the old ones die); needs step-up', response: { 200: recoveryCodesSchema, ...errorResponses(...BODY_ERRORS, 401, 403, 404) } },
  }, async (request) => {
    const session = sessionOf(request);
    await stepUp.require(session);
    if (!(await secondFactorStatus(secondFactors, session.uid)).totp) throw notFound('TOTP factor');
    return { recovery_codes: await regenerateRecoveryCodes(secondFactors, session.uid, auditContext(request)) };
  });

  app.post<{ Body: { mfa_ticket: string; method: 'totp' | 'recovery'; code: string } }>('/v1/user/mfa/verify', {
    schema: {
      tags: ['mfa'],
      summary: 'The second step of a login: the ticket and a TOTP or recovery code give the session',
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['mfa_ticket', 'method', 'code'],
        properties: { mfa_ticket: { type: 'string', minLength: 1, maxLength: 128 }, method: { type: 'string', enum: ['totp', 'recovery'] }, code: codeSchema },
      },
      response: { 200: loginResponseSchema, ...errorResponses(...BODY_ERRORS, 401, 403, 409, 410, 429) },
    },
  }, async (request) => {
    await runtime.limiter.hit('login', request.ip, runtime.config.rateLimits.login);
    const { mfa_ticket: ticket, method, code } = request.body;
    return verifySecondStep(runtime, { ticket, method, code }, auditContext(request));
  });

  app.post<{ Body: { method: StepUpMethod; password?: string; code?: string } }>('/v1/user/step_up', {
    onRequest: requireSession,
    schema: {
      tags: ['mfa'],
      summary: 'Show a factor again, for the actions that need a recent one',
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['method'],
        properties: { method: { type: 'string', enum: ['password', 'totp'] }, password: passwordSchema, code: codeSchema },
      },
      response: { 200: { type: 'object', properties: { step_up_until: { type: 'integer', description: 'Unix time in milliseconds' } } }, ...errorResponses(...BODY_ERRORS, 401, 429) },
    },
  }, async (request) => {
    const session = sessionOf(request);
    const { method, password, code } = request.body;
    const context = auditContext(request);
    if (method === 'password') {
      if (password === undefined) throw invalidRequest('password', 'password is required for method "password"');
      await proveOwnPassword(runtime, session, password, context);
    } else {
      if (code === undefined) throw invalidRequest('code', 'code is required for method "totp"');
      if (!(await proveSecondFactor(runtime, session.uid, 'totp', code, context.ip))) {
        runtime.metrics.mfa.inc({ event: 'step_up', method: 'totp', result: 'fail' });
        await runtime.audit.record({ type: 'step_up', uid: session.uid, sid: session.sid, result: 'fail', reason: 'totp', context });
        throw new LatchkeyError('invalid_credentials', 'wrong code');
      }
    }
    runtime.metrics.mfa.inc({ event: 'step_up', method, result: 'ok' });
    await runtime.audit.record({ type: 'step_up', uid: session.uid, sid: session.sid, result: 'ok', reason: method, context });
    return { step_up_until: await markSteppedUp(stepUp.deps, session) };
  });
}
