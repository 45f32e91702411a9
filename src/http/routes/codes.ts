import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Runtime } from '../../runtime/runtime.ts';
import type { CodeChannel, CodePurpose } from '../../ports/sender.ts';
import { CODE_CHANNELS, CODE_PURPOSES } from '../../ports/sender.ts';
import type { DeviceFlag } from '../../core/sessions/policy.ts';
import { normalizeDestination } from '../../core/destinations.ts';
import type { CodeFlowDeps } from '../../flows/code/deps.ts';
import { sendCode } from '../../flows/code/send-code.ts';
import { codeLogin } from '../../flows/code/code-login.ts';
import { resetPassword } from '../../flows/code/password-reset.ts';
import { auditContext, loginContext, type DeviceBody } from '../context.ts';
import { BODY_ERRORS, deviceSchema, emailSchema, errorResponses, flagSchema, loginResponseSchema, loginOrChallengeSchema, newPasswordSchema, okSchema } from '../schemas.ts';

interface Addressed {
  channel: CodeChannel;
  to: string;
}
interface SendBody extends Addressed {
  purpose: CodePurpose;
}
interface CodeLoginBody extends Addressed {
  code: string;
  flag: DeviceFlag;
  device?: DeviceBody;
}
interface ResetBody extends Addressed {
  code: string;
  new_password: string;
}

const channelSchema = { type: 'string', enum: CODE_CHANNELS } as const;
const codeSchema = { type: 'string', pattern: '^[0-9]{6}$' } as const;
const zonePhoneSchema = { type: 'string', pattern: '^\\d{1,6}-\\d{4,20}$', description: 'zone-phone, e.g. 86-13800000000' } as const;
/** `to` is an email for channel email and `zone-phone` for sms; surrounding spaces are trimmed first. */
const toSchema = { type: 'string', minLength: 1, maxLength: 254 } as const;
const toByChannel = [
  { if: { properties: { channel: { const: 'email' } } }, then: { properties: { to: emailSchema } } },
  { if: { properties: { channel: { const: 'sms' } } }, then: { properties: { to: zonePhoneSchema } } },
] as const;

const addressedBody = (required: readonly string[], properties: Record<string, unknown>) => ({
  type: 'object',
  additionalProperties: false,
  required: ['channel', 'to', ...required],
  properties: { channel: channelSchema, to: toSchema, ...properties },
  allOf: toByChannel,
});

/** Runs before validation, so ` Alice@Example.test ` is checked (and later stored) as trimmed. */
async function trimDestination(request: FastifyRequest): Promise<void> {
  const body = request.body;
  if (body !== null && typeof body === 'object' && 'to' in body && typeof body.to === 'string') body.to = body.to.trim();
}

/** What the code flows are given, from the runtime (also the compat SMS routes, routes/octo.ts). */
export function codeFlowDeps(runtime: Runtime, log: CodeFlowDeps['log']): CodeFlowDeps {
  const { random, clock, config } = runtime;
  return {
    accounts: runtime.accounts,
    events: runtime.events,
    sessions: runtime.sessions,
    alerts: runtime.alerts,
    hasher: runtime.hasher,
    sender: runtime.sender,
    codes: runtime.codes,
    cooldown: runtime.codeCooldown,
    timing: runtime.codeSendTiming,
    limiter: runtime.limiter,
    audit: runtime.audit,
    metrics: runtime.metrics,
    clock,
    random,
    log,
    secondStep: runtime.secondStep,
    octoMirror: runtime.octoMirror,
    settings: {
      registerByEmail: config.codeLogin.registerByEmail,
      registerBySms: config.codeLogin.registerBySms,
      sendPerIp: config.rateLimits.codeSendIp,
      sendPerDestination: config.rateLimits.codeSendTo,
      sendPerDestinationAll: config.rateLimits.codeSendToAll,
    },
  };
}

export function codeRoutes(app: FastifyInstance, runtime: Runtime): void {
  const { config } = runtime;
  const deps = codeFlowDeps(runtime, app.log);

  app.post<{ Body: SendBody }>('/v1/user/code/send', {
    preValidation: trimDestination,
    schema: {
      tags: ['codes'],
      summary: 'Send a 6-digit one-time code (5 minutes, one per destination and requester per minute); same answer, in the same time, whether or not an account exists',
      body: addressedBody(['purpose'], { purpose: { type: 'string', enum: CODE_PURPOSES } }),
      response: { 200: { type: 'object', properties: { status: { type: 'integer' }, resend_after: { type: 'integer' } } }, ...errorResponses(...BODY_ERRORS, 429) },
    },
  }, async (request) => {
    const { channel, to, purpose } = request.body;
    return sendCode(deps, purpose, normalizeDestination(channel, to), auditContext(request));
  });

  app.post<{ Body: CodeLoginBody }>('/v1/user/code/login', {
    preValidation: trimDestination,
    schema: {
      tags: ['codes'],
      summary: 'Log in with a login (or register) code; creates the account when registration by that channel is on',
      body: addressedBody(['code', 'flag'], { code: codeSchema, flag: flagSchema, device: deviceSchema }),
      response: { 200: loginOrChallengeSchema, ...errorResponses(...BODY_ERRORS, 401, 403, 409, 410, 429) },
    },
  }, async (request) => {
    // Each code allows five guesses; this per-IP limit (shared with password login) slows spraying many codes.
    await runtime.limiter.hit('code_login', request.ip, config.rateLimits.login);
    const { channel, to, code, flag, device } = request.body;
    return codeLogin(deps, normalizeDestination(channel, to), code, loginContext(request, flag, device));
  });

  // With compat.octo it also takes octo-server's shape, and answers in its envelope (routes/octo.ts).
  if (!config.compat.octo) {
    app.post<{ Body: ResetBody }>('/v1/user/pwdforget', {
      preValidation: trimDestination,
      schema: {
        tags: ['codes'],
        summary: 'Set a new password with a reset_password code; every session of the account ends',
        body: addressedBody(['code', 'new_password'], { code: codeSchema, new_password: newPasswordSchema }),
        response: { 200: okSchema, ...errorResponses(...BODY_ERRORS, 401, 403, 409, 410, 429) },
      },
    }, async (request) => {
      await runtime.limiter.hit('code_login', request.ip, config.rateLimits.login);
      const { channel, to, code, new_password } = request.body;
      await resetPassword(deps, normalizeDestination(channel, to), code, new_password, auditContext(request));
      return { status: 200 };
    });
  }
}
