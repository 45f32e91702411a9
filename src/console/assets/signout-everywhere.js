// @ts-check
/**
 * The page the new-device alert's "not you?" link opens (src/flows/alerts/new-device.ts). Opening
 * it does nothing: mail scanners fetch links. Only the button posts the link's one-time secret,
 * which leaves the address bar first (no history entry, no Referer carries it) and stays in this
 * closure.
 */
import { api, ApiError } from './api.js';
import { busy, byId, say } from './dom.js';
import { t, tCount, wireLanguageSwitch } from './i18n.js';
import { describeError } from './messages.js';

wireLanguageSwitch();
const token = new URLSearchParams(location.search).get('t');
if (location.search !== '') history.replaceState(null, '', location.pathname);

const confirm = byId('alert-confirm', HTMLButtonElement);
const error = byId('alert-error', HTMLElement);
const done = byId('alert-done', HTMLElement);
const signIn = byId('alert-sign-in', HTMLAnchorElement);

/** The link can't be used (any more): say so, and offer the sign-in page. @param {string} text */
function finished(text) {
  confirm.hidden = true;
  signIn.hidden = false;
  say(error, text);
}

if (token === null || token === '') finished(t('alert.no_link'));

confirm.addEventListener('click', () => void busy(confirm, async () => {
  say(error, '');
  try {
    /** @type {{revoked: number}} */
    const { revoked } = await api('POST', '/v1/user/alerts/sign_out_everywhere', { token }, { leaveOnUnauthorized: false });
    confirm.hidden = true;
    signIn.hidden = false;
    say(done, tCount('alert.done', revoked));
  } catch (failure) {
    if (failure instanceof ApiError && (failure.code === 'expired' || failure.code === 'invalid_request')) finished(t('alert.expired'));
    else say(error, describeError(failure));
  }
}));
document.body.dataset.ready = 'true';
