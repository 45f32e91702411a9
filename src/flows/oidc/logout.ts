/**
 * SSO logout: ends this session (final, docs/design.md §3.2), revokes the IdP refresh token that came with
 * it (RFC 7009) and hands back the IdP's end-session URL (RP-Initiated Logout 1.0) for the browser
 * to visit. Each step runs whatever the others did; each failure is counted on its own; the answer
 * is 200 only if the session is certainly over.
 */
import * as client from 'openid-client';
import type { Session } from '../../core/sessions/record.ts';
import { StoreUnavailableError } from '../../ports/errors.ts';
import type { AuditContext } from '../../ops/audit.ts';
import type { OidcDeps } from './deps.ts';
import { readLink, unlinkSession, type SessionLink } from './session-links.ts';
import { idTokenAad, refreshTokenAad } from './token-cipher.ts';

export interface OidcLogoutResult {
  readonly endSessionUrl: string | undefined;
  /** False when the IdP could not be told; the token is forgotten here either way. */
  readonly idpTokenRevoked: boolean;
}

export async function oidcLogout(deps: OidcDeps, providerId: string, session: Session, context: AuditContext): Promise<OidcLogoutResult> {
  deps.directory.configOf(providerId);
  let link: SessionLink | null = null;
  let sessionEnded = true;
  try {
    link = await readLink(deps.kv, session.sid);
    await deps.sessions.logout(session);
  } catch (error) {
    sessionEnded = false;
    deps.log.warn({ err: error, provider: providerId }, 'oidc logout could not end the session');
  }
  const ownLink = link !== null && link.provider === providerId && link.uid === session.uid ? link : null;
  const idpTokenRevoked = ownLink === null ? true : await revokeRefreshToken(deps, ownLink);
  if (sessionEnded && ownLink !== null) await unlinkSession(deps.kv, session.sid, ownLink).catch(() => undefined);

  if (!sessionEnded) deps.oidcMetrics.logout.inc('token_fail');
  if (!idpTokenRevoked) deps.oidcMetrics.logout.inc('idp_revoke_fail');
  if (sessionEnded && idpTokenRevoked) deps.oidcMetrics.logout.inc('ok');
  const reason = [providerId, sessionEnded ? null : 'token_fail', idpTokenRevoked ? null : 'idp_revoke_fail'].filter(Boolean).join(':');
  await deps.audit.record({ type: 'oidc_logout', uid: session.uid, sid: session.sid, result: sessionEnded ? 'ok' : 'fail', reason, context });
  if (!sessionEnded) throw new StoreUnavailableError('the session store did not confirm the logout');
  return { endSessionUrl: ownLink === null ? undefined : await endSessionUrl(deps, providerId, ownLink), idpTokenRevoked };
}

async function revokeRefreshToken(deps: OidcDeps, link: SessionLink): Promise<boolean> {
  if (link.refreshTokenId === null) return true;
  try {
    const stored = await deps.identities.findRefreshToken(link.refreshTokenId);
    if (stored === null) return true;
    const token = deps.cipher.open(stored.sealed, refreshTokenAad(stored.identityId, stored.id));
    // Forgotten here whatever the IdP answers: nobody else holds it, so an unrevoked token is at least unusable.
    await deps.identities.deleteRefreshToken(stored.id);
    if (token === null) return false;
    const provider = await deps.directory.get(link.provider);
    await client.tokenRevocation(provider.client, token, { token_type_hint: 'refresh_token' });
    return true;
  } catch (error) {
    deps.log.warn({ err: error, provider: link.provider }, 'oidc refresh token revocation failed');
    return false;
  }
}

async function endSessionUrl(deps: OidcDeps, providerId: string, link: SessionLink): Promise<string | undefined> {
  try {
    const provider = await deps.directory.get(providerId);
    if (provider.client.serverMetadata().end_session_endpoint === undefined) return undefined;
    const parameters: Record<string, string> = { client_id: provider.config.clientId };
    const idToken = link.idToken === null ? null : deps.cipher.open(link.idToken.sealed, idTokenAad(link.idToken.handle));
    if (idToken !== null) parameters.id_token_hint = idToken;
    if (provider.config.postLogoutRedirectUri !== undefined) parameters.post_logout_redirect_uri = provider.config.postLogoutRedirectUri;
    return client.buildEndSessionUrl(provider.client, parameters).href;
  } catch {
    return undefined;
  }
}
