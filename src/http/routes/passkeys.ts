/**
 * Passkeys (docs/api.md §14, docs/design.md §4, second factors): register one from a signed-in
 * session (step-up: a stolen token alone must not buy its thief a permanent way in), list, rename,
 * remove (step-up; the sessions it signed in end with it), and sign in with one alone. Bodies are the browser's WebAuthn JSON
 * (`PublicKeyCredential.toJSON()`), plus `name` when registering and `flag`/`device` when signing in.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import type { Runtime } from '../../runtime/runtime.ts';
import { passkeyOrigins } from '../../config/passkeys.ts';
import type { DeviceFlag } from '../../core/sessions/policy.ts';
import { notFound } from '../../core/errors.ts';
import {
  listPasskeys, loginOptions, registrationOptions, removePasskey, renamePasskey, verifyPasskeyLogin, verifyRegistration, type PasskeyDeps,
} from '../../flows/mfa/passkeys.ts';
import { secondFactorStatus } from '../../flows/mfa/second-factors.ts';
import { requireStepUp, type StepUpDeps, type StepUpMethod } from '../../flows/mfa/step-up.ts';
import { authenticate, sessionOf } from '../auth.ts';
import { auditContext, loginContext, type DeviceBody } from '../context.ts';
import { BODY_ERRORS, deviceSchema, errorResponses, flagSchema, loginResponseSchema, okSchema, printableText } from '../schemas.ts';

const b64url = (maxLength: number) => ({ type: 'string', minLength: 1, maxLength, pattern: '^[A-Za-z0-9_-]+$' }) as const;
/** A credential id: at most 1023 bytes (WebAuthn), base64url. */
const credentialId = b64url(1400);
const nameSchema = { ...printableText(64), minLength: 1 } as const;

/** What every PublicKeyCredential's JSON has; the `response` differs per ceremony. */
const credentialProperties = {
  id: credentialId,
  rawId: credentialId,
  type: { type: 'string', enum: ['public-key'] },
  clientExtensionResults: { type: 'object' },
  authenticatorAttachment: { type: 'string', enum: ['platform', 'cross-platform'] },
} as const;

const registrationBody = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'rawId', 'type', 'response'],
  properties: {
    ...credentialProperties,
    response: {
      type: 'object',
      required: ['clientDataJSON', 'attestationObject'],
      properties: {
        clientDataJSON: b64url(4096),
        attestationObject: b64url(32_768),
        authenticatorData: b64url(32_768),
        transports: { type: 'array', maxItems: 8, items: { type: 'string', maxLength: 32, pattern: '^[a-z-]+$' } },
        publicKeyAlgorithm: { type: 'integer' },
        publicKey: b64url(4096),
      },
    },
    name: nameSchema,
  },
} as const;

const loginBody = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'rawId', 'type', 'response', 'flag'],
  properties: {
    ...credentialProperties,
    response: {
      type: 'object',
      required: ['clientDataJSON', 'authenticatorData', 'signature'],
      properties: {
        clientDataJSON: b64url(4096),
        authenticatorData: b64url(32_768),
        signature: b64url(2048),
        userHandle: b64url(128),
      },
    },
    flag: flagSchema,
    device: deviceSchema,
  },
} as const;

/** The options go to the browser as they are; their shape is WebAuthn's (PublicKeyCredentialCreation/RequestOptionsJSON). */
const optionsSchema = { type: 'object', additionalProperties: true, properties: { challenge: { type: 'string' }, rpId: { type: 'string' } } } as const;

const passkeySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    transports: { type: 'array', items: { type: 'string' } },
    created_at: { type: 'integer' },
    last_used_at: { type: ['integer', 'null'] },
  },
} as const;

const idParams = { type: 'object', required: ['id'], properties: { id: credentialId } } as const;

export function passkeyRoutes(app: FastifyInstance, runtime: Runtime): void {
  const requireSession = authenticate(runtime.sessions, runtime.metrics);
  const stepUp: StepUpDeps = { kv: runtime.kv, clock: runtime.clock, stepUpMs: runtime.config.mfa.stepUpSeconds * 1000 };
  const { passkeys: config } = runtime.config;
  const deps: PasskeyDeps = {
    ...runtime,
    passkeys: {
      repo: runtime.passkeys.repo,
      rp: {
        id: config.rpId,
        name: config.rpName,
        // Without configured origins: http://localhost on the port this node listens on.
        origins: () => passkeyOrigins(config, (app.server.address() as AddressInfo | null)?.port ?? runtime.config.port),
      },
    },
  };

  async function stepUpMethods(uid: string): Promise<StepUpMethod[]> {
    return (await secondFactorStatus(runtime.secondFactors, uid)).totp ? ['password', 'totp'] : ['password'];
  }

  app.post('/v1/user/passkeys/register/options', {
    onRequest: requireSession,
    schema: {
      tags: ['mfa'],
      summary: 'Options for navigator.credentials.create (a passkey of this account); needs step-up',
      response: { 200: optionsSchema, ...errorResponses(...BODY_ERRORS, 401, 403, 404, 409) },
    },
  }, async (request) => {
    const session = sessionOf(request);
    await requireStepUp(stepUp, session, await stepUpMethods(session.uid));
    const user = await runtime.accounts.findByUid(session.uid);
    if (user === null) throw notFound('user');
    return registrationOptions(deps, session, user);
  });

  app.post<{ Body: RegistrationResponseJSON & { name?: string } }>('/v1/user/passkeys/register/verify', {
    onRequest: requireSession,
    schema: {
      tags: ['mfa'],
      summary: 'Store the passkey the browser made from the last options of this session; needs step-up',
      body: registrationBody,
      response: { 200: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' } } }, ...errorResponses(...BODY_ERRORS, 401, 403, 409, 410) },
    },
  }, async (request) => {
    const session = sessionOf(request);
    await requireStepUp(stepUp, session, await stepUpMethods(session.uid));
    const { name, ...response } = request.body;
    return verifyRegistration(deps, session, response, name, auditContext(request));
  });

  app.post('/v1/user/passkeys/login/options', {
    schema: {
      tags: ['mfa'],
      summary: 'Options for navigator.credentials.get: a one-time challenge (5 minutes), any passkey of this site',
      response: { 200: optionsSchema, ...errorResponses(...BODY_ERRORS, 429) },
    },
  }, async (request) => {
    await runtime.limiter.hit('login', request.ip, runtime.config.rateLimits.login);
    return loginOptions(deps);
  });

  app.post<{ Body: AuthenticationResponseJSON & { flag: DeviceFlag; device?: DeviceBody } }>('/v1/user/passkeys/login/verify', {
    schema: {
      tags: ['mfa'],
      summary: 'Sign in with a passkey: the browser\'s assertion over the challenge of login/options',
      body: loginBody,
      response: { 200: loginResponseSchema, ...errorResponses(...BODY_ERRORS, 401, 403, 409, 410, 429) },
    },
  }, async (request) => {
    await runtime.limiter.hit('login', request.ip, runtime.config.rateLimits.login);
    const { flag, device, ...response } = request.body;
    return verifyPasskeyLogin(deps, response, loginContext(request, flag, device));
  });

  app.get('/v1/user/passkeys', {
    onRequest: requireSession,
    schema: {
      tags: ['mfa'],
      summary: 'This account\'s passkeys',
      response: { 200: { type: 'object', properties: { passkeys: { type: 'array', items: passkeySchema } } }, ...errorResponses(401) },
    },
  }, async (request) => ({ passkeys: await listPasskeys(deps, sessionOf(request).uid) }));

  app.patch<{ Params: { id: string }; Body: { name: string } }>('/v1/user/passkeys/:id', {
    onRequest: requireSession,
    schema: {
      tags: ['mfa'],
      summary: 'Rename one of this account\'s passkeys',
      params: idParams,
      body: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: nameSchema } },
      response: { 200: okSchema, ...errorResponses(...BODY_ERRORS, 401, 404) },
    },
  }, async (request) => {
    await renamePasskey(deps, sessionOf(request).uid, request.params.id, request.body.name);
    return { status: 200 };
  });

  app.delete<{ Params: { id: string } }>('/v1/user/passkeys/:id', {
    onRequest: requireSession,
    schema: {
      tags: ['mfa'],
      summary: 'Remove one of this account\'s passkeys and end the sessions it signed in (this one too, if it did); needs step-up',
      params: idParams,
      response: { 200: { type: 'object', properties: { status: { type: 'integer' }, revoked: { type: 'integer' } } }, ...errorResponses(400, 401, 403, 404) },
    },
  }, async (request) => {
    const session = sessionOf(request);
    await requireStepUp(stepUp, session, await stepUpMethods(session.uid));
    const revoked = await removePasskey(deps, session, request.params.id, auditContext(request));
    return { status: 200, revoked };
  });
}
