// @ts-check
/**
 * What /account and /admin share: find out who is signed in (or leave for the sign-in page), fill
 * the top bar, wire "Sign out", and re-check whenever the tab comes back into view, so a console
 * left open while its session was revoked does not sit there looking signed in.
 */
import { api, ApiError } from './api.js';
import { busy, byId, initials, say } from './dom.js';
import { wireLanguageSwitch } from './i18n.js';
import { describeError } from './messages.js';

/**
 * @typedef {{uid: string, username: string, name: string, email?: string, phone?: string, role: string,
 *   session: {sid: string, device_flag: number, method: string, created_at: number, expires_at: number}}} CurrentUser
 */

/**
 * @param {(user: CurrentUser) => Promise<void>} render fills the page
 * @param {(user: CurrentUser) => Promise<unknown>} [onReturn] when the tab is shown again (default: check the session)
 * @returns {Promise<CurrentUser>}
 */
export async function signedInPage(render, onReturn) {
  wireLanguageSwitch();
  /** @type {CurrentUser} */
  const user = await api('GET', '/v1/user/current');
  say(byId('who-name', HTMLElement), user.name);
  say(byId('avatar', HTMLElement), initials(user.name || user.username));
  byId('nav-admin', HTMLAnchorElement).hidden = user.role !== 'admin';

  const signOut = byId('sign-out', HTMLButtonElement);
  signOut.addEventListener('click', () => void busy(signOut, async () => {
    try {
      await signOutHere(user);
    } catch (error) {
      say(byId('page-error', HTMLElement), describeError(error));
    }
  }));

  await render(user);
  const main = byId('main', HTMLElement);
  main.removeAttribute('aria-busy');
  document.body.dataset.ready = 'true';

  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible') return;
    void (onReturn === undefined ? api('GET', '/v1/user/current') : onReturn(user)).catch(() => {});
  });
  return user;
}

/** Set by the sign-in page after an SSO sign-in: which provider this browser's session came from. */
export const SSO_PROVIDER_KEY = 'latchkey.sso_provider';

/**
 * Ends this browser's session and goes to the sign-in page. A session from SSO ends through the
 * provider's logout route, which also revokes the refresh token latchkey holds for it (RFC 7009);
 * the IdP's own session is left alone: signing out of this console is not signing out of the company.
 * @param {CurrentUser} user
 */
export async function signOutHere(user) {
  let provider = null;
  try {
    provider = localStorage.getItem(SSO_PROVIDER_KEY);
  } catch {
    // storage disabled: a plain sign-out still ends the session
  }
  let ended = false;
  if (user.session.method === 'oidc' && provider !== null) {
    try {
      await api('POST', `/v1/auth/oidc/${encodeURIComponent(provider)}/logout`);
      ended = true;
    } catch (error) {
      // The provider is no longer configured: its logout route is gone, the plain one still works.
      if (!(error instanceof ApiError && error.code === 'not_found')) throw error;
    }
  }
  if (!ended) await api('POST', '/v1/user/quit');
  location.replace('/');
}

/** For a page's own fatal start-up error (the API is down): say it where the content would be. */
/** @param {unknown} error */
export function startFailed(error) {
  say(byId('page-error', HTMLElement), describeError(error));
  byId('main', HTMLElement).removeAttribute('aria-busy');
}
