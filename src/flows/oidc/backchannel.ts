/**
 * Back-channel logout receiver (OpenID Connect Back-Channel Logout 1.0 §2.6): the IdP POSTs a signed
 * logout_token when a user's IdP session ends; latchkey ends the sessions that came from it. The
 * token is checked with jose against the IdP's keys (openid-client does not do it, openid-client#225):
 * iss, aud, iat, the logout event, no nonce (so an ID token cannot pass for one), sid and/or sub.
 * A jti seen before is acknowledged and ignored, so a replay does nothing twice.
 *
 * Anyone can POST here, so a refused token writes no row (it is counted by reason in a metric) and
 * spends the sender's budget of invalid tokens (invalid-token-budget.ts); a token the IdP signed
 * is never throttled.
 */
import { createHash } from 'node:crypto';
import { errors as joseErrors, jwtVerify, type JWTHeaderParameters, type JWTPayload } from 'jose';
import { LatchkeyError, invalidRequest } from '../../core/errors.ts';
import type { AuditContext } from '../../ops/audit.ts';
import type { OidcDeps } from './deps.ts';
import { endIdentitySessions, endIdpSession } from './session-links.ts';
import { isNetworkError } from './failure.ts';
import { BACKCHANNEL_INVALID_REASONS } from './metrics.ts';
import { refuseWhenSpent, spendOnInvalid } from './invalid-token-budget.ts';

const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** How old a logout_token may be; the jti cache keeps every jti at least this long. */
const MAX_TOKEN_AGE_SECONDS = 300;
const CLOCK_TOLERANCE_SECONDS = 30;
const JTI_TTL_MS = (MAX_TOKEN_AGE_SECONDS + 2 * CLOCK_TOLERANCE_SECONDS) * 1000;
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

export type BackchannelResult = { readonly outcome: 'ended'; readonly sessions: number } | { readonly outcome: 'replay' };

/**
 * `requester` is the budget the client's invalid tokens count against: its address, or its IPv6
 * network (RateLimiter.requester), so one host cannot spread its attempts over 2^64 budgets.
 */
export async function receiveBackchannelLogout(
  deps: OidcDeps, providerId: string, logoutToken: string, context: AuditContext, requester: string = context.ip,
): Promise<BackchannelResult> {
  const limit = deps.oidcConfig.rateLimit;
  try {
    await refuseWhenSpent(deps.kv, requester, limit);
  } catch (error) {
    deps.oidcMetrics.backchannel.inc('rate_limited');
    throw error;
  }
  const provider = await deps.directory.get(providerId);
  const issuer = provider.client.serverMetadata().issuer;
  let claims: JWTPayload & { sid?: unknown; events?: unknown; nonce?: unknown };
  try {
    let header: JWTHeaderParameters;
    ({ payload: claims, protectedHeader: header } = await jwtVerify(logoutToken, provider.jwks, {
      issuer,
      audience: provider.config.clientId,
      algorithms: ASYMMETRIC,
      maxTokenAge: MAX_TOKEN_AGE_SECONDS,
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ['iat', 'jti', 'events'],
      currentDate: new Date(deps.clock.now()),
    }));
    checkLogoutType(header);
    checkLogoutClaims(claims);
  } catch (error) {
    if (isNetworkError(error)) throw new LatchkeyError('upstream_unavailable', 'the identity provider keys are unreachable');
    deps.oidcMetrics.backchannel.inc('invalid');
    deps.oidcMetrics.backchannelInvalid.inc(invalidReason(error));
    await spendOnInvalid(deps.kv, requester, limit);
    throw invalidRequest('logout_token', 'invalid logout_token');
  }
  const jti = String(claims.jti);
  const fresh = await deps.kv.set(`oidc:jti:${digest(issuer, jti)}`, '1', { nx: true, ttlMs: JTI_TTL_MS });
  if (!fresh) {
    deps.oidcMetrics.backchannel.inc('replay');
    return { outcome: 'replay' };
  }
  const now = deps.clock.now();
  let ended = 0;
  let uid: string | null = null;
  if (typeof claims.sid === 'string') {
    ended = await endIdpSession(deps.kv, deps.sessions, issuer, claims.sid, now);
  } else if (typeof claims.sub === 'string') {
    // sub alone means every session of that user from this IdP (Keycloak's "log out all").
    const identity = await deps.identities.findBySubject(issuer, claims.sub);
    if (identity !== null) {
      uid = identity.uid;
      ended = await endIdentitySessions(deps.kv, deps.sessions, identity.uid, identity.id, now, true);
    }
  }
  deps.oidcMetrics.backchannel.inc('ok');
  await deps.audit.record({
    type: 'oidc_backchannel', uid, sid: null, result: 'ok', reason: `${providerId}:${typeof claims.sid === 'string' ? 'sid' : 'sub'}:${ended}`, context,
  });
  return { outcome: 'ended', sessions: ended };
}

function invalidReason(error: unknown): (typeof BACKCHANNEL_INVALID_REASONS)[number] {
  if (error instanceof LatchkeyError) return 'claims';
  if (!(error instanceof joseErrors.JOSEError)) return 'malformed';
  if (error instanceof joseErrors.JWTExpired) return 'expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) return 'claims';
  const signature = ['ERR_JWS_SIGNATURE_VERIFICATION_FAILED', 'ERR_JWKS_NO_MATCHING_KEY', 'ERR_JWKS_MULTIPLE_MATCHING_KEYS', 'ERR_JOSE_ALG_NOT_ALLOWED'];
  return signature.includes(error.code) ? 'signature' : 'malformed';
}

/**
 * §2.4: a typed logout token says so in `typ`. An ID token or access token (typ `JWT`, `at+jwt`)
 * signed by the same IdP for the same client must never be taken for one (cross-JWT confusion,
 * ASVS 10.5.5). An untyped token is still accepted — some IdPs do not type theirs — and is then
 * told apart by its claims (the event present, no nonce).
 */
function checkLogoutType(header: JWTHeaderParameters): void {
  if (header.typ === undefined) return;
  const typ = header.typ.toLowerCase();
  if (typ !== 'logout+jwt' && typ !== 'application/logout+jwt') throw new LatchkeyError('invalid_request', 'typ is not logout+jwt');
}

/** §2.6 steps 4–6: the logout event is there, a nonce is not, and it names a session or a user. */
function checkLogoutClaims(claims: JWTPayload & { sid?: unknown; events?: unknown; nonce?: unknown }): void {
  const events = claims.events;
  const event = events !== null && typeof events === 'object' ? (events as Record<string, unknown>)[LOGOUT_EVENT] : undefined;
  if (event === null || typeof event !== 'object' || Array.isArray(event)) throw new LatchkeyError('invalid_request', 'no logout event');
  if (claims.nonce !== undefined) throw new LatchkeyError('invalid_request', 'nonce present');
  if (typeof claims.sid !== 'string' && typeof claims.sub !== 'string') throw new LatchkeyError('invalid_request', 'neither sid nor sub');
}

const digest = (...parts: string[]): string => createHash('sha256').update(parts.join('\n')).digest('base64url');
