// @ts-check
/**
 * The sign-in page: password, one-time code and QR tabs (each shown only when the server offers
 * it: GET /v1/common/appconfig), a button per SSO provider, and the end of an SSO round trip
 * (`?lk_code=`). Every way in ends the same: the login answer sets the session cookie, and the
 * page moves on to the account (or to the page that sent the user here).
 */
import { api, ENDED_KEY, hasSessionCookie, RETURN_PAGES } from './api.js';
import { thisDevice } from './device.js';
import { byId, h, onSubmit, say, setupTabs } from './dom.js';
import { t, wireLanguageSwitch } from './i18n.js';
import { describeError, describeSsoError, endedWords } from './messages.js';
import { codeSignIn } from './signin-code.js';
import { passkeySignIn } from './passkeys.js';
import { qrSignIn } from './signin-qr.js';
import { askSecondStep, needsSecondStep } from './signin-two-step.js';
import { SSO_PROVIDER_KEY } from './signed-in.js';

/** @typedef {{id: string, name: string, authorize_path: string}} SsoProvider */

/**
 * Which provider this tab sent to its IdP. A `?lk_code=` arriving in a tab that started no SSO is
 * somebody else's login: exchanging it would sign this browser into the account of whoever made
 * the link (login CSRF, with a binding cookie planted from a sibling subdomain). Another site can
 * neither read nor write this tab's sessionStorage.
 */
const SSO_PENDING_KEY = 'latchkey.sso_pending';

/** The provider this tab started an SSO login with, taken (it is good for one return). */
function takePendingSso() {
  try {
    const pending = sessionStorage.getItem(SSO_PENDING_KEY);
    sessionStorage.removeItem(SSO_PENDING_KEY);
    return pending;
  } catch {
    return null;
  }
}
/** @typedef {{oidc_providers: SsoProvider[], qr_login: boolean, code_login: {sms: boolean, email: boolean}}} AppConfig */

const params = new URLSearchParams(location.search);
const requested = params.get('next') ?? '';
const next = RETURN_PAGES.includes(requested) ? requested : '/account';
// `lk_code` is a one-time secret: out of the address bar and the history before anything else.
if (location.search !== '') history.replaceState(null, '', '/');

function signedIn() {
  location.replace(next);
}

/** @param {string} text */
function showPageError(text) {
  say(byId('page-error', HTMLElement), text);
}

/** @returns {Promise<AppConfig>} */
async function appConfig() {
  try {
    return await api('GET', '/v1/common/appconfig');
  } catch (error) {
    showPageError(describeError(error));
    return { oidc_providers: [], qr_login: false, code_login: { sms: false, email: false } };
  }
}

/**
 * The end of an SSO round trip: the callback sent the browser back to `return_to` (which named the
 * provider) with a one-time handoff code; the binding cookie proves this browser started it.
 * @param {string} lkCode
 * @param {string | null} provider
 */
async function finishSso(lkCode, provider) {
  if (provider === null) {
    showPageError(describeSsoError('login_failed'));
    return;
  }
  if (takePendingSso() !== provider) {
    showPageError(describeSsoError('not_started_here'));
    return;
  }
  const notice = byId('notice', HTMLElement);
  say(notice, t('signin.sso_finishing'));
  notice.hidden = false;
  try {
    await api('POST', `/v1/auth/oidc/${encodeURIComponent(provider)}/exchange`, { lk_code: lkCode });
  } catch (error) {
    notice.hidden = true;
    showPageError(describeError(error, { expired: describeSsoError('expired'), not_found: describeSsoError('expired') }));
    return;
  }
  try {
    localStorage.setItem(SSO_PROVIDER_KEY, provider);
  } catch {
    // without storage, signing out falls back to the plain logout
  }
  signedIn();
}

/** @param {SsoProvider[]} providers */
function showSsoButtons(providers) {
  const list = byId('sso-list', HTMLUListElement);
  for (const provider of providers) {
    // return_to is a relative path (always accepted) that names the provider for the way back.
    const returnTo = new URLSearchParams({ sso: provider.id });
    if (next !== '/account') returnTo.set('next', next);
    const target = new URL(provider.authorize_path, location.origin);
    target.searchParams.set('return_to', `/?${returnTo}`);
    target.searchParams.set('flag', '1');
    for (const [key, value] of Object.entries(thisDevice())) target.searchParams.set(key, value);
    const link = h('a', { class: 'button', href: target.pathname + target.search, 'data-provider': provider.id }, t('signin.sso_continue', { provider: provider.name }));
    link.addEventListener('click', () => {
      try {
        sessionStorage.setItem(SSO_PENDING_KEY, provider.id);
      } catch {
        // without storage the return is refused: better no SSO than someone else's
      }
    });
    list.append(h('li', {}, link));
  }
  byId('sso', HTMLElement).hidden = providers.length === 0;
}

function passwordSignIn() {
  const form = byId('password-form', HTMLFormElement);
  const username = byId('username', HTMLInputElement);
  const password = byId('password', HTMLInputElement);
  const error = byId('password-error', HTMLElement);
  onSubmit(form, async () => {
    say(error, '');
    /** @type {unknown} */
    let answer;
    try {
      answer = await api('POST', '/v1/user/login', { username: username.value.trim(), password: password.value, flag: 1, device: thisDevice() });
    } catch (failure) {
      say(error, describeError(failure, { invalid_request: t('signin.password_invalid') }));
      password.select();
      return;
    }
    if (needsSecondStep(answer)) return askSecondStep(answer, signedIn);
    signedIn();
  });
}

async function main() {
  wireLanguageSwitch();
  if (params.get('signed_out') === '1') {
    const notice = byId('notice', HTMLElement);
    const stored = sessionStorage.getItem(ENDED_KEY);
    sessionStorage.removeItem(ENDED_KEY);
    /** @type {unknown} */
    let ended = null;
    try {
      ended = stored === null ? null : JSON.parse(stored);
    } catch {
      // unreadable: the plain words
    }
    say(notice, endedWords(ended));
    notice.hidden = false;
  } else if (!params.has('lk_code') && hasSessionCookie()) {
    // Already signed in on this browser: straight on, unless that session has ended meanwhile.
    try {
      await api('GET', '/v1/user/current', undefined, { leaveOnUnauthorized: false });
      return signedIn();
    } catch {
      // not signed in after all
    }
  }

  const config = await appConfig();
  const ssoError = params.get('oidc_error');
  if (ssoError !== null) showPageError(describeSsoError(ssoError));
  const lkCode = params.get('lk_code');
  if (lkCode !== null) await finishSso(lkCode, params.get('sso') ?? (config.oidc_providers.length === 1 ? config.oidc_providers[0]?.id ?? null : null));

  passwordSignIn();
  const codeChannels = config.code_login;
  byId('tab-code', HTMLButtonElement).hidden = !(codeChannels.email || codeChannels.sms);
  if (codeChannels.email || codeChannels.sms) codeSignIn(codeChannels, signedIn);
  byId('tab-qr', HTMLButtonElement).hidden = !config.qr_login;
  const qr = qrSignIn(signedIn, (text) => say(byId('qr-error', HTMLElement), text));
  setupTabs(byId('methods', HTMLElement), (tab) => {
    if (tab.id === 'tab-qr') qr.start();
    else qr.stop();
  });
  showSsoButtons(config.oidc_providers);
  passkeySignIn(signedIn);
  document.body.dataset.ready = 'true';
}

void main();
