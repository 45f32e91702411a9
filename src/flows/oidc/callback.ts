/**
 * Step 2 of SSO, where the IdP sends the browser back. The state is consumed first (once, whatever
 * follows); then openid-client runs the code grant with the expected state, nonce and PKCE verifier
 * and validates the ID token (signature, iss, aud, exp, nonce); then the account is resolved and the
 * result left under a one-time handoff code. A failure after the state was found still returns the
 * browser to its `return_to`, with `oidc_error`, and is audited with its precise reason.
 */
import * as client from 'openid-client';
import { LatchkeyError, invalidRequest } from '../../core/errors.ts';
import { StoreUnavailableError } from '../../ports/errors.ts';
import type { AuditContext } from '../../ops/audit.ts';
import type { OidcDeps } from './deps.ts';
import { consumeState, type AuthorizationState } from './authorization-state.ts';
import { claimsFrom, withUserInfo } from './idp-claims.ts';
import { resolveAccount } from './account-resolution.ts';
import { createHandoff } from './handoff.ts';
import { idTokenAad, refreshTokenAad } from './token-cipher.ts';
import { SsoFailure, isNetworkError } from './failure.ts';
import { callbackLocation, isSafeTarget } from './return-to.ts';
import { withinOutsiderAuditBudget } from './audit-budget.ts';

/** Returns where to send the browser; throws invalid_request (400) when the state is unusable. */
export async function completeCallback(
  deps: OidcDeps, providerId: string, query: URLSearchParams, context: AuditContext,
): Promise<string> {
  const stateValue = query.get('state');
  const state = stateValue === null ? null : await consumeState(deps.kv, stateValue);
  if (stateValue === null || state === null || state.provider !== providerId) {
    // Counted, not audited: anyone can send a made-up state, and a row each would be theirs to write.
    deps.oidcMetrics.callback.inc('state_invalid');
    throw invalidRequest('state', 'unknown, expired or already used state');
  }
  const { returnToHosts } = deps.directory.configOf(providerId);
  if (!isSafeTarget(state.returnTo, returnToHosts)) {
    // Defence in depth: authorize stores only safe targets, so this is an old or forged state record.
    deps.oidcMetrics.callback.inc('return_to_refused');
    if (await withinOutsiderAuditBudget(deps.kv, deps.oidcConfig.rateLimit)) {
      await deps.audit.record({ type: 'oidc_callback', uid: null, sid: null, result: 'fail', reason: `${providerId}:return_to_refused`, context });
    }
    throw invalidRequest('return_to', 'the stored return_to would leave latchkey');
  }
  try {
    const { code, uid, how } = await signIn(deps, providerId, state, stateValue, query);
    deps.oidcMetrics.callback.inc('ok');
    await deps.audit.record({ type: 'oidc_callback', uid, sid: null, result: 'ok', reason: `${providerId}:${how}`, context });
    return callbackLocation(state.returnTo, returnToHosts, 'lk_code', code);
  } catch (error) {
    const failure = asFailure(error);
    if (failure.result === 'other_fail' || failure.result === 'store_fail') deps.log.warn({ err: error, provider: providerId }, 'oidc callback failed');
    deps.oidcMetrics.callback.inc(failure.result);
    if (failure.uid !== null || (await withinOutsiderAuditBudget(deps.kv, deps.oidcConfig.rateLimit))) {
      await deps.audit.record({
        type: 'oidc_callback', uid: failure.uid, sid: null, result: 'fail', reason: `${providerId}:${failure.message}`.slice(0, 255), context,
      });
    }
    return callbackLocation(state.returnTo, returnToHosts, 'oidc_error', failure.code);
  }
}

async function signIn(deps: OidcDeps, providerId: string, state: AuthorizationState, stateValue: string, query: URLSearchParams) {
  const provider = await deps.directory.get(providerId).catch((error: unknown) => {
    throw error instanceof LatchkeyError ? new SsoFailure({ code: 'idp_unavailable', result: 'idp_unavailable', reason: 'discovery failed' }) : error;
  });
  const currentUrl = new URL(provider.config.redirectUri);
  currentUrl.search = query.toString();
  const tokens = await client.authorizationCodeGrant(provider.client, currentUrl, {
    pkceCodeVerifier: state.codeVerifier,
    expectedState: stateValue,
    expectedNonce: state.nonce,
    idTokenExpected: true,
  }).catch((error: unknown) => {
    throw grantFailure(error);
  });
  const idToken = tokens.claims();
  if (idToken === undefined || tokens.id_token === undefined) throw new SsoFailure({ code: 'login_failed', result: 'token_fail', reason: 'no id_token' });
  const claims = await withUserInfo(provider.client, tokens.access_token, claimsFrom(idToken), (error) => {
    deps.log.warn({ err: error, provider: providerId }, 'oidc userinfo ignored');
  });
  const resolved = await resolveAccount(deps, provider.config, idToken.iss, claims);
  if (resolved.user.status !== 'active') {
    throw new SsoFailure({ code: 'account_disabled', result: 'account_disabled', reason: 'account_disabled', uid: resolved.user.uid });
  }
  const refreshTokenId = newId(deps);
  const idTokenHandle = newId(deps);
  const code = await createHandoff(deps.kv, deps.random, {
    provider: providerId,
    issuer: idToken.iss,
    uid: resolved.user.uid,
    identityId: resolved.identity.id,
    binding: state.binding,
    flag: state.flag,
    device: state.device,
    idpSid: claims.sid,
    amr: claims.amr,
    refreshToken: tokens.refresh_token === undefined
      ? null
      : { id: refreshTokenId, sealed: deps.cipher.seal(tokens.refresh_token, refreshTokenAad(resolved.identity.id, refreshTokenId)) },
    idToken: { handle: idTokenHandle, sealed: deps.cipher.seal(tokens.id_token, idTokenAad(idTokenHandle)) },
    authenticatedAt: deps.clock.now(),
  });
  return { code, uid: resolved.user.uid, how: resolved.how };
}

function grantFailure(error: unknown): SsoFailure {
  if (error instanceof client.AuthorizationResponseError) {
    return new SsoFailure({ code: 'access_denied', result: 'idp_error', reason: `idp_error:${error.error}`.slice(0, 80) });
  }
  if (error instanceof client.ResponseBodyError) {
    return new SsoFailure({ code: 'login_failed', result: 'token_fail', reason: `token_endpoint:${error.error}`.slice(0, 80) });
  }
  if (isNetworkError(error)) return new SsoFailure({ code: 'idp_unavailable', result: 'idp_unavailable', reason: 'idp_unreachable' });
  const code = error instanceof Error && 'code' in error ? String(error.code) : 'unknown';
  // e.g. OAUTH_JWT_CLAIM_COMPARISON_FAILED for a wrong nonce, OAUTH_INVALID_RESPONSE for a bad signature.
  return new SsoFailure({ code: 'login_failed', result: 'token_fail', reason: `token_invalid:${code}:${error instanceof Error ? error.message : ''}` });
}

function asFailure(error: unknown): SsoFailure {
  if (error instanceof SsoFailure) return error;
  if (error instanceof StoreUnavailableError) return new SsoFailure({ code: 'server_error', result: 'store_fail', reason: 'store_unavailable' });
  if (error instanceof LatchkeyError && error.code === 'account_disabled') {
    return new SsoFailure({ code: 'account_disabled', result: 'account_disabled', reason: 'account_disabled' });
  }
  return new SsoFailure({ code: 'server_error', result: 'other_fail', reason: error instanceof Error ? `error:${error.name}` : 'error' });
}

const newId = (deps: Pick<OidcDeps, 'random'>): string => deps.random.bytes(16).toString('hex');
