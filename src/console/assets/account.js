// @ts-check
/**
 * /account: the signed-in user's devices (live sessions), password change, and recent security
 * events (GET /v1/user/audit).
 */
import { api } from './api.js';
import { busy, byId, confirmAction, h, onSubmit, say } from './dom.js';
import { deviceIcon, icon } from './icons.js';
import {
  absoluteTime, browserWords, describeError, eventWords, flagWords, methodWords, relativeTime,
} from './messages.js';
import { t, tCount } from './i18n.js';
import { signedInPage, signOutHere, startFailed } from './signed-in.js';
import { passkeysCard } from './passkeys.js';
import { withStepUp } from './step-up.js';

/**
 * @typedef {{sid: string, device_flag: number, device_id: string, device_name: string, device_model: string,
 *   method: string, ip: string, created_at: number, last_seen_at: number, current: boolean}} SessionView
 * @typedef {{id: number, type: string, result: string, reason: string | null, ip: string | null,
 *   user_agent: string | null, at: number, current: boolean}} AuditView
 */

const ACTIVITY_LIMIT = 15;

/** @param {string} text */
function showPageError(text) {
  say(byId('page-error', HTMLElement), text);
}

/** @type {import('./signed-in.js').CurrentUser | null} */
let me = null;

/**
 * "First seen <time>", with the time as a <time> element wherever the language puts it.
 * @param {number} at
 * @returns {(Node | string)[]}
 */
function firstSeen(at) {
  const [before = '', after = ''] = t('account.first_seen').split('{time}');
  return [before, h('time', { datetime: new Date(at).toISOString() }, absoluteTime(at)), after];
}

/** @param {SessionView} session */
function deviceItem(session) {
  const name = session.device_name || flagWords(session.device_flag);
  const model = session.device_model && session.device_model !== name ? session.device_model : '';
  const signOut = h('button', { type: 'button', class: 'small', 'aria-label': t(session.current ? 'account.sign_out_this_device_label' : 'account.sign_out_device_label', { name }) }, t('account.sign_out_device'));
  signOut.addEventListener('click', () => void busy(signOut, async () => {
    try {
      if (session.current && me !== null) {
        await signOutHere(me);
        return;
      }
      await api('DELETE', `/v1/user/sessions/${encodeURIComponent(session.sid)}`);
      say(byId('devices-status', HTMLElement), t('account.signed_out_device', { name }));
    } catch (error) {
      showPageError(describeError(error, { not_found: t('account.device_gone') }));
    }
    await showDevices();
  }));
  const seen = session.last_seen_at || session.created_at;
  return h('li', { 'data-sid': session.sid, class: session.current ? 'current' : undefined },
    h('span', { class: 'item-icon' }, deviceIcon(session.device_flag)),
    h('div', { class: 'item-main' },
      h('span', { class: 'item-title' }, name, model !== '' && h('span', { class: 'muted small' }, model),
        session.current && h('span', { class: 'badge accent' }, t('account.this_device'))),
      h('span', { class: 'item-meta' }, `${methodWords(session.method)} · ${session.ip || t('account.unknown_address')}`),
      h('span', { class: 'item-meta' },
        ...firstSeen(session.created_at),
        ` · ${t('account.last_seen')} `, h('time', { datetime: new Date(seen).toISOString(), title: absoluteTime(seen) }, session.current ? t('account.now') : relativeTime(seen))),
    ),
    h('div', { class: 'item-actions' }, signOut),
  );
}

async function showDevices() {
  /** @type {SessionView[]} */
  const sessions = await api('GET', '/v1/user/sessions');
  // This device first, then the most recently used.
  sessions.sort((a, b) => Number(b.current) - Number(a.current) || (b.last_seen_at || b.created_at) - (a.last_seen_at || a.created_at));
  const list = byId('devices', HTMLUListElement);
  list.replaceChildren(...sessions.map(deviceItem));
  byId('revoke-others', HTMLButtonElement).disabled = sessions.every((s) => s.current);
}

/** @param {AuditView} event */
function activityItem(event) {
  const failed = event.result === 'fail';
  const where = [event.ip, browserWords(event.user_agent ?? '')].filter((part) => part !== null && part !== '').join(' · ');
  return h('li', {},
    h('span', { class: failed ? 'item-icon fail' : 'item-icon' }, icon(failed ? 'alert' : 'shield')),
    h('div', { class: 'item-main' },
      h('span', { class: 'item-title' }, eventWords(event), failed && h('span', { class: 'badge danger' }, t('account.failed')),
        event.current && h('span', { class: 'badge' }, t('account.this_device'))),
      h('span', { class: 'item-meta' },
        h('time', { datetime: new Date(event.at).toISOString(), title: absoluteTime(event.at) }, relativeTime(event.at)),
        where === '' ? '' : ` · ${where}`),
    ),
  );
}

async function showActivity() {
  /** @type {{events: AuditView[]}} */
  const { events } = await api('GET', `/v1/user/audit?limit=${ACTIVITY_LIMIT}`);
  const list = byId('activity', HTMLUListElement);
  list.replaceChildren(...events.map(activityItem));
  if (events.length === 0) list.append(h('li', { class: 'empty' }, t('account.nothing_yet')));
}

function wireDevices() {
  const refresh = byId('devices-refresh', HTMLButtonElement);
  refresh.addEventListener('click', () => void busy(refresh, async () => {
    say(byId('devices-status', HTMLElement), '');
    await Promise.all([showDevices(), showActivity()]).catch((error) => showPageError(describeError(error)));
  }));
  const others = byId('revoke-others', HTMLButtonElement);
  others.addEventListener('click', () => void busy(others, async () => {
    const sure = await confirmAction({
      title: t('account.revoke_others_title'),
      text: t('account.revoke_others_text'),
      action: t('account.revoke_others'),
      danger: true,
    });
    if (!sure) return;
    try {
      const done = await withStepUp(() => api('POST', '/v1/user/sessions/revoke_others'));
      if (done !== undefined) say(byId('devices-status', HTMLElement), tCount('account.revoked_others', done.revoked));
    } catch (error) {
      showPageError(describeError(error));
    }
    await Promise.all([showDevices(), showActivity()]);
  }));
}

/** @param {string} username */
function wirePasswordChange(username) {
  const form = byId('password-form', HTMLFormElement);
  const current = byId('current-password', HTMLInputElement);
  const fresh = byId('new-password', HTMLInputElement);
  const repeat = byId('repeat-password', HTMLInputElement);
  const error = byId('password-error', HTMLElement);
  const done = byId('password-done', HTMLElement);
  byId('password-username', HTMLInputElement).value = username;
  onSubmit(form, async () => {
    say(error, '');
    say(done, '');
    if (fresh.value !== repeat.value) {
      say(error, t('account.passwords_differ'));
      repeat.focus();
      return;
    }
    const revokeOthers = byId('revoke-on-change', HTMLInputElement).checked;
    try {
      await api('PUT', '/v1/user/updatepassword', { password: current.value, new_password: fresh.value, revoke_other_sessions: revokeOthers });
    } catch (failure) {
      say(error, describeError(failure, {
        invalid_credentials: t('account.current_password_wrong'),
        invalid_request: t('account.new_password_invalid'),
      }));
      return;
    }
    form.reset();
    byId('revoke-on-change', HTMLInputElement).checked = true;
    say(done, t(revokeOthers ? 'account.password_changed_revoked' : 'account.password_changed'));
    await Promise.all([showDevices(), showActivity()]);
  });
}

signedInPage(async (user) => {
  me = user;
  say(byId('who-detail', HTMLElement), t('account.signed_in_as', { name: user.name, username: user.username }));
  await Promise.all([showDevices(), showActivity()]);
}, () => Promise.all([showDevices(), showActivity()])).then((user) => {
  wireDevices();
  wirePasswordChange(user.username);
  passkeysCard(showActivity)().catch((error) => showPageError(describeError(error)));
}, startFailed);
