import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Runtime } from '../../runtime/runtime.ts';
import type { DeviceFlag } from '../../core/sessions/policy.ts';
import { invalidRequest } from '../../core/errors.ts';
import { startAuthorization } from '../../flows/oidc/authorize.ts';
import { completeCallback } from '../../flows/oidc/callback.ts';
import { exchangeHandoff } from '../../flows/oidc/exchange.ts';
import { oidcLogout } from '../../flows/oidc/logout.ts';
import { receiveBackchannelLogout } from '../../flows/oidc/backchannel.ts';
import { readBindingCookies } from '../../flows/oidc/binding.ts';
import { authenticate, sessionOf } from '../auth.ts';
import { auditContext } from '../context.ts';
import { BODY_ERRORS, errorResponses, loginResponseSchema, printableText } from '../schemas.ts';

const paramsSchema = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,63}$' } },
} as const;
/** Kept until the login is exchanged, then written to the account database: no NUL (a 500 then on PostgreSQL). */
const deviceText = printableText(128);
const secret43 = { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' } as const;
const FORM_LIMIT = 16 * 1024;

interface AuthorizeQuery {
  return_to?: string;
  flag?: '0' | '1' | '2';
  app_challenge?: string;
  device_id?: string;
  device_name?: string;
  device_model?: string;
}

/**
 * OpenID Connect SSO (docs/api.md §10); the flows live in src/flows/oidc. The IdP
 * directory and the sync worker start with the server and stop with it.
 */
export function oidcRoutes(app: FastifyInstance, runtime: Runtime): void {
  const { oidc, limiter } = runtime;
  const requireSession = authenticate(runtime.sessions, runtime.metrics);
  const limit = (name: string, request: FastifyRequest) => limiter.hit(`oidc_${name}`, request.ip, oidc.oidcConfig.rateLimit);
  app.addHook('onReady', async () => oidc.start());
  app.addHook('onClose', async () => oidc.close());

  app.get<{ Params: { id: string }; Querystring: AuthorizeQuery }>('/v1/auth/oidc/:id/authorize', {
    schema: {
      tags: ['oidc'],
      summary: 'Start SSO: 302 to the identity provider, with a binding cookie (or bound to `app_challenge`)',
      params: paramsSchema,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          return_to: { type: 'string', maxLength: 2048 },
          flag: { type: 'string', enum: ['0', '1', '2'], description: '0 APP, 1 Web (default), 2 PC' },
          app_challenge: { ...secret43, description: 'native apps: base64url(SHA-256(app_verifier))' },
          device_id: deviceText, device_name: deviceText, device_model: deviceText,
        },
      },
      response: { 302: { description: 'to the identity provider' }, ...errorResponses(400, 404, 429) },
    },
  }, async (request, reply) => {
    await limit('authorize', request);
    const { return_to, flag, app_challenge, device_id, device_name, device_model } = request.query;
    const secure = request.secureCookies;
    const result = await startAuthorization(oidc, request.params.id, {
      returnTo: return_to,
      flag: (flag === undefined ? 1 : Number(flag)) as DeviceFlag,
      device: { device_id: device_id ?? '', device_name: device_name ?? '', device_model: device_model ?? '' },
      appChallenge: app_challenge,
      presentedCookies: readBindingCookies(request.headers.cookie, secure),
      secure,
    });
    if (result.setCookie !== null) void reply.setCookie(result.setCookie.name, result.setCookie.value, result.setCookie.options);
    return redirect(reply, result.location);
  });

  app.get<{ Params: { id: string }; Querystring: Record<string, string> }>('/v1/auth/oidc/:id/callback', {
    schema: {
      tags: ['oidc'],
      summary: 'Where the identity provider returns: 302 to `return_to?lk_code=…` (or `oidc_error=…`)',
      params: paramsSchema,
      // IdPs add parameters of their own (iss, session_state); a repeated one is an array and refused.
      querystring: { type: 'object', additionalProperties: { type: 'string', maxLength: 4096 } },
      response: { 302: { description: 'to `return_to` with `lk_code` or `oidc_error`' }, ...errorResponses(400, 404, 429) },
    },
  }, async (request, reply) => {
    await limit('callback', request);
    const query = new URLSearchParams(request.query);
    return redirect(reply, await completeCallback(oidc, request.params.id, query, auditContext(request)));
  });

  app.post<{ Params: { id: string }; Body: { lk_code: string; app_verifier?: string } }>('/v1/auth/oidc/:id/exchange', {
    schema: {
      tags: ['oidc'],
      summary: 'Trade the handoff code for a session, once; needs the binding cookie or `app_verifier`',
      params: paramsSchema,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['lk_code'],
        properties: {
          lk_code: { type: 'string', maxLength: 128 },
          app_verifier: { type: 'string', pattern: '^[A-Za-z0-9._~-]{43,128}$' },
        },
      },
      response: { 200: loginResponseSchema, ...errorResponses(...BODY_ERRORS, 403, 404, 409, 410, 429) },
    },
  }, async (request, reply) => {
    await limit('exchange', request);
    void reply.header('cache-control', 'no-store');
    return exchangeHandoff(oidc, request.params.id, {
      code: request.body.lk_code,
      cookies: readBindingCookies(request.headers.cookie, request.secureCookies),
      appVerifier: request.body.app_verifier,
    }, auditContext(request));
  });

  app.post<{ Params: { id: string } }>('/v1/auth/oidc/:id/logout', {
    onRequest: requireSession,
    schema: {
      tags: ['oidc'],
      summary: 'End this session, revoke its IdP refresh token; `end_session_url` logs out at the IdP',
      params: paramsSchema,
      response: {
        200: {
          type: 'object',
          properties: { status: { type: 'integer' }, end_session_url: { type: 'string' }, idp_token_revoked: { type: 'boolean' } },
        },
        ...errorResponses(...BODY_ERRORS, 401, 404),
      },
    },
  }, async (request) => {
    const result = await oidcLogout(oidc, request.params.id, sessionOf(request), auditContext(request));
    return { status: 200, end_session_url: result.endSessionUrl, idp_token_revoked: result.idpTokenRevoked };
  });

  void app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_LIMIT }, (_request, body, done) => {
      const form = new URLSearchParams(typeof body === 'string' ? body : body.toString('utf8'));
      const keys = [...form.keys()];
      // A repeated parameter is refused rather than resolved one way or the other.
      if (new Set(keys).size !== keys.length) return done(invalidRequest('body', 'repeated form parameter'), undefined);
      done(null, Object.fromEntries(form));
    });
    scope.post<{ Params: { id: string }; Body: { logout_token: string } }>('/v1/auth/oidc/:id/backchannel_logout', {
      schema: {
        tags: ['oidc'],
        summary: 'OpenID Connect Back-Channel Logout 1.0 receiver (form `logout_token`)',
        params: paramsSchema,
        body: {
          type: 'object',
          required: ['logout_token'],
          properties: { logout_token: { type: 'string', minLength: 1, maxLength: FORM_LIMIT } },
        },
        response: { 200: { type: 'object', properties: { status: { type: 'integer' } } }, ...errorResponses(...BODY_ERRORS, 404, 429) },
      },
    }, async (request, reply) => {
      // §2.8: the response must not be cached.
      void reply.header('cache-control', 'no-store');
      await receiveBackchannelLogout(oidc, request.params.id, request.body.logout_token, auditContext(request), limiter.requester(request.ip));
      return { status: 200 };
    });
  });
}

function redirect(reply: FastifyReply, location: string): FastifyReply {
  return reply.header('cache-control', 'no-store').redirect(location, 302);
}
