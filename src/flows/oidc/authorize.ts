/**
 * Step 1 of SSO: remember the request (state, nonce, PKCE verifier, where to return, which device,
 * which client) and send the browser to the IdP. All three of state, nonce and PKCE S256 are used:
 * state ties the callback to this request, nonce ties the ID token to it, PKCE ties the code to it.
 */
import * as client from 'openid-client';
import type { DeviceFlag } from '../../core/sessions/policy.ts';
import type { DeviceInfo } from '../../core/sessions/record.ts';
import type { OidcDeps } from './deps.ts';
import { bindingCookie, s256, type Binding, type CookieToSet } from './binding.ts';
import { saveState } from './authorization-state.ts';
import { validateReturnTo } from './return-to.ts';

export interface AuthorizeInput {
  readonly returnTo: string | undefined;
  readonly flag: DeviceFlag;
  readonly device: DeviceInfo;
  /** S256 of a verifier only the native app holds; replaces the cookie. */
  readonly appChallenge: string | undefined;
  /** Every binding cookie value the browser sent: other tabs' logins, kept in the new cookie if signed here. */
  readonly presentedCookies: readonly string[];
  readonly secure: boolean;
}

export interface AuthorizeResult {
  readonly location: string;
  readonly setCookie: CookieToSet | null;
}

export async function startAuthorization(deps: OidcDeps, providerId: string, input: AuthorizeInput): Promise<AuthorizeResult> {
  const config = deps.directory.configOf(providerId);
  const returnTo = validateReturnTo(input.returnTo, config.returnToHosts);
  const provider = await deps.directory.get(providerId);
  let binding: Binding;
  let setCookie: CookieToSet | null = null;
  if (input.appChallenge !== undefined) {
    binding = { kind: 'app', challenge: input.appChallenge };
  } else {
    const issued = deps.bindingCookies.issue(input.presentedCookies);
    binding = { kind: 'cookie', hash: s256(issued.secret) };
    setCookie = bindingCookie(issued.value, input.secure);
  }
  const state = deps.random.bytes(32).toString('base64url');
  const nonce = deps.random.bytes(32).toString('base64url');
  const codeVerifier = deps.random.bytes(48).toString('base64url');
  await saveState(deps.kv, state, {
    provider: providerId, codeVerifier, nonce, returnTo, flag: input.flag, device: input.device, binding, createdAt: deps.clock.now(),
  });
  const parameters: Record<string, string> = {
    redirect_uri: config.redirectUri,
    scope: config.scopes.join(' '),
    state,
    nonce,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
  };
  // OIDC Core §11: offline_access is ignored unless the user is asked for consent.
  if (config.scopes.includes('offline_access')) parameters.prompt = 'consent';
  return { location: client.buildAuthorizationUrl(provider.client, parameters).href, setCookie };
}
