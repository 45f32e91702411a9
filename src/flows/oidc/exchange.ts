/**
 * Step 3 of SSO: the client that started the login trades the handoff code for a session, once.
 * Without its binding (the cookie, or the app's verifier) the code is a 404, as if unknown; it is
 * not consumed then, so someone who saw the code cannot burn it either.
 */
import { LatchkeyError, accountDisabled, notFound } from '../../core/errors.ts';
import type { AuditContext } from '../../ops/audit.ts';
import type { LoginResponse } from '../login-response.ts';
import { startSession } from '../start-session.ts';
import type { OidcDeps } from './deps.ts';
import { bindingMatches } from './binding.ts';
import { firstBindingMismatch, lookupHandoff, markHandoffUsed } from './handoff.ts';
import { keepIfAlive, linkSession, loggedOutAtIdpSince, pruneIdentityLinks, unlinkSession, type SessionLink } from './session-links.ts';

export interface ExchangeInput {
  readonly code: string;
  /** Every binding cookie value the request carried. */
  readonly cookies: readonly string[];
  readonly appVerifier: string | undefined;
}

export async function exchangeHandoff(deps: OidcDeps, providerId: string, input: ExchangeInput, context: AuditContext): Promise<LoginResponse> {
  const config = deps.directory.configOf(providerId);
  const found = await lookupHandoff(deps.kv, input.code);
  if (found.status === 'used') throw usedCode(deps);
  // A made-up code is counted, not audited: anyone can send one, and a row each would be theirs to write.
  if (found.status === 'unknown' || found.handoff.provider !== providerId) {
    deps.oidcMetrics.exchange.inc('not_found');
    throw notFound('sign-in code');
  }
  const { handoff } = found;
  if (!bindingMatches(handoff.binding, { cookieSecrets: deps.bindingCookies.secrets(input.cookies), appVerifier: input.appVerifier })) {
    // A real code without its binding: someone else holds it. Its owner sees this in their audit
    // log, once per code however often it is tried (from however many addresses).
    deps.oidcMetrics.exchange.inc('binding_mismatch');
    if (await firstBindingMismatch(deps.kv, input.code)) {
      await deps.audit.record({ type: 'oidc_exchange', uid: handoff.uid, sid: null, result: 'fail', reason: `${providerId}:binding_mismatch`, context });
    }
    throw notFound('sign-in code');
  }
  if (!(await markHandoffUsed(deps.kv, input.code, found.raw))) throw usedCode(deps);

  const user = await deps.accounts.findByUid(handoff.uid);
  if (user === null) throw notFound('account');
  // The callback may be a minute old: an account banned since gets no session.
  if (user.status !== 'active') throw accountDisabled();
  // SSO trusts the IdP's authentication, second factor included: its `amr` goes into the session.
  const response = await startSession(deps, user, 'oidc', { ...context, flag: handoff.flag, device: handoff.device }, handoff.amr ?? undefined);

  if (handoff.refreshToken !== null) {
    await deps.identities.saveRefreshToken({
      id: handoff.refreshToken.id, identityId: handoff.identityId, provider: providerId, sid: response.sid, sealed: handoff.refreshToken.sealed, createdAt: deps.clock.now(),
    });
  }
  const link: SessionLink = {
    provider: providerId,
    issuer: handoff.issuer,
    uid: user.uid,
    identityId: handoff.identityId,
    idpSid: handoff.idpSid,
    refreshTokenId: handoff.refreshToken?.id ?? null,
    idToken: handoff.idToken,
  };
  await pruneIdentityLinks(deps.kv, user.uid, handoff.identityId);
  await linkSession(deps.kv, response.sid, link, response.expires_at - deps.clock.now());
  // Indexed first, checked second: a back-channel logout either swept this session or left a mark
  // that is seen here (the ban protocol's two-sided check, docs/design.md §3.2 invariant 5).
  if (await loggedOutAtIdpSince(deps.kv, link, handoff.authenticatedAt)) {
    await deps.sessions.revoke(user.uid, response.sid, 'revoked');
    await unlinkSession(deps.kv, response.sid, link);
    if (handoff.refreshToken !== null) await deps.identities.deleteRefreshToken(handoff.refreshToken.id);
    await deps.audit.record({ type: 'oidc_exchange', uid: user.uid, sid: response.sid, result: 'fail', reason: `${config.id}:idp_logged_out`, context });
    deps.oidcMetrics.exchange.inc('idp_logged_out');
    throw new LatchkeyError('expired', 'the identity provider ended this sign-in');
  }
  // Linked first, checked second: a revoke that ended the session before its link existed found
  // nothing to remove, so the link goes here (the session's end removes it in the other order).
  await keepIfAlive(deps.kv, response.sid, link);
  deps.oidcMetrics.exchange.inc('ok');
  return response;
}

function usedCode(deps: Pick<OidcDeps, 'oidcMetrics'>): LatchkeyError {
  deps.oidcMetrics.exchange.inc('used');
  return new LatchkeyError('expired', 'this sign-in code was already used');
}
