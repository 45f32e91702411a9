// @ts-check
/**
 * /admin: find users, ban and unban them, see and end their sessions, browse the audit trail
 * (docs/api.md §9). The server checks the admin role on every call; this page only hides
 * what a non-admin could not use anyway.
 */
import { api } from './api.js';
import { busy, byId, confirmAction, h, initials, say } from './dom.js';
import { deviceIcon, icon } from './icons.js';
import {
  absoluteTime, browserWords, describeError, eventWords, flagWords, methodWords, relativeTime,
} from './messages.js';
import { t, tCount } from './i18n.js';
import { signedInPage, startFailed } from './signed-in.js';
import { withStepUp } from './step-up.js';

/**
 * @typedef {{uid: string, username: string, name: string, email?: string | null, phone?: string | null,
 *   zone?: string | null, role: string, status: string, created_at?: number}} UserView
 * @typedef {{sid: string, device_flag: number, device_name: string, device_model: string, method: string,
 *   ip: string, created_at: number, last_seen_at?: number}} SessionView
 * @typedef {{id?: number, type: string, uid: string | null, result: string, reason: string | null,
 *   ip: string | null, user_agent?: string | null, at: number}} AuditView
 */

const PAGE_SIZE = 20;
const AUDIT_LIMIT = 50;
const NOT_ADMIN = t('admin.not_admin');

const state = {
  query: '',
  page: 1,
  /** The signed-in admin: their own row offers no Ban (the server refuses it anyway). */
  me: '',
  /** `before` for the next page of audit events, or null when there is none. */
  auditBefore: /** @type {number | null} */ (null),
};

/** @param {string} text */
function showPageError(text) {
  say(byId('page-error', HTMLElement), text);
}

/**
 * The contract names the fields, not the envelope: accept a bare array or `{<key>: [...]}`.
 * @template T
 * @param {unknown} body
 * @param {string} key
 * @returns {{items: T[], total: number | undefined}}
 */
function listOf(body, key) {
  if (Array.isArray(body)) return { items: body, total: undefined };
  if (body !== null && typeof body === 'object') {
    const record = /** @type {Record<string, unknown>} */ (body);
    const items = record[key] ?? record.items ?? record.data;
    return { items: Array.isArray(items) ? items : [], total: typeof record.total === 'number' ? record.total : undefined };
  }
  return { items: [], total: undefined };
}

/** @param {SessionView} session */
function sessionItem(session) {
  const seen = session.last_seen_at || session.created_at;
  return h('li', { 'data-sid': session.sid },
    h('span', { class: 'item-icon' }, deviceIcon(session.device_flag)),
    h('div', { class: 'item-main' },
      h('span', { class: 'item-title' }, session.device_name || flagWords(session.device_flag),
        session.device_model !== '' && h('span', { class: 'muted small' }, session.device_model)),
      h('span', { class: 'item-meta' }, `${methodWords(session.method)} · ${session.ip || t('admin.unknown_address')}`),
      h('span', { class: 'item-meta' }, t('admin.session_seen', { first: absoluteTime(session.created_at), last: relativeTime(seen) })),
    ),
  );
}

/** @param {UserView} user @param {HTMLElement} panel */
async function showSessions(user, panel) {
  const { items } = listOf(await api('GET', `/v1/manager/users/${encodeURIComponent(user.uid)}/sessions`), 'sessions');
  /** @type {SessionView[]} */
  const sessions = items;
  const list = h('ul', { class: 'list', 'aria-label': t('admin.sessions_of', { username: user.username }) }, ...sessions.map(sessionItem));
  if (sessions.length === 0) list.append(h('li', { class: 'empty' }, t('admin.no_sessions')));
  const revokeAll = h('button', { type: 'button', class: 'small danger' }, t('admin.revoke_all'));
  revokeAll.disabled = sessions.length === 0;
  revokeAll.addEventListener('click', () => void busy(revokeAll, async () => {
    const sure = await confirmAction({
      title: t('admin.revoke_all_title', { username: user.username }),
      text: t('admin.revoke_all_text', { name: user.name }),
      action: t('admin.revoke_all'),
      danger: true,
    });
    if (!sure) return;
    try {
      const done = await withStepUp(() => api('DELETE', `/v1/manager/users/${encodeURIComponent(user.uid)}/sessions`));
      if (done !== undefined) say(byId('users-status', HTMLElement), t('admin.revoked_all', { username: user.username }));
    } catch (error) {
      showPageError(describeError(error, { forbidden: NOT_ADMIN }));
    }
    await showSessions(user, panel);
  }));
  panel.replaceChildren(
    h('div', { class: 'card-head' }, h('div', {}, h('h3', {}, t('admin.sessions_count', { count: sessions.length }))), h('div', { class: 'card-actions' }, revokeAll)),
    list,
  );
}

/** @param {UserView} user */
function userItem(user) {
  const banned = user.status === 'banned';
  const panelId = `sessions-${user.uid}`;
  const panel = h('div', { class: 'sessions-panel', id: panelId, hidden: true });
  const sessions = h('button', { type: 'button', class: 'small', 'aria-expanded': 'false', 'aria-controls': panelId }, t('admin.sessions'));
  sessions.addEventListener('click', () => void busy(sessions, async () => {
    const open = sessions.getAttribute('aria-expanded') !== 'true';
    sessions.setAttribute('aria-expanded', String(open));
    panel.hidden = !open;
    if (!open) return;
    panel.replaceChildren(h('p', { class: 'muted small' }, t('admin.sessions_loading')));
    await showSessions(user, panel).catch((error) => {
      panel.replaceChildren(h('p', { class: 'error' }, describeError(error, { forbidden: NOT_ADMIN, not_found: t('admin.user_gone') })));
    });
  }));
  const activity = h('button', { type: 'button', class: 'small' }, t('admin.activity'));
  activity.addEventListener('click', () => {
    byId('audit-uid', HTMLInputElement).value = user.uid;
    byId('audit-type', HTMLSelectElement).value = '';
    byId('audit-since', HTMLInputElement).value = '';
    void showAudit();
    byId('audit-card', HTMLElement).scrollIntoView({ behavior: 'smooth', block: 'start' });
  });
  const toggle = h('button', { type: 'button', class: banned ? 'small' : 'small danger', hidden: user.uid === state.me }, t(banned ? 'admin.unban' : 'admin.ban'));
  toggle.addEventListener('click', () => void busy(toggle, async () => {
    if (!banned) {
      const sure = await confirmAction({
        title: t('admin.ban_title', { username: user.username }),
        text: t('admin.ban_text', { name: user.name }),
        action: t('admin.ban_action'),
        danger: true,
      });
      if (!sure) return;
    }
    try {
      const done = await withStepUp(() => api('PUT', `/v1/manager/users/${encodeURIComponent(user.uid)}/status`, { status: banned ? 'active' : 'banned' }));
      if (done !== undefined) say(byId('users-status', HTMLElement), t(banned ? 'admin.unbanned' : 'admin.banned_done', { username: user.username }));
    } catch (error) {
      showPageError(describeError(error, {
        forbidden: NOT_ADMIN, not_found: t('admin.user_gone'), invalid_request: t('admin.ban_self'),
      }));
    }
    await showUsers();
  }));
  const contact = [user.email, user.phone === undefined || user.phone === null ? null : user.zone ? `${user.zone}-${user.phone}` : user.phone]
    .filter((part) => typeof part === 'string' && part !== '').join(' · ');
  return h('li', { 'data-uid': user.uid, 'data-username': user.username },
    h('span', { class: 'item-icon' }, h('span', { class: 'avatar' }, initials(user.name || user.username))),
    h('div', { class: 'item-main' },
      h('span', { class: 'item-title' }, user.name, h('span', { class: 'muted small' }, `@${user.username}`),
        user.role === 'admin' && h('span', { class: 'badge accent' }, t('admin.role_admin')),
        h('span', { class: banned ? 'badge danger' : 'badge ok', 'data-status': user.status }, t(banned ? 'admin.status_banned' : 'admin.status_active'))),
      contact !== '' && h('span', { class: 'item-meta' }, contact),
      h('span', { class: 'item-meta' }, h('span', { class: 'mono' }, user.uid),
        user.created_at === undefined ? '' : t('admin.joined', { date: absoluteTime(user.created_at) })),
    ),
    h('div', { class: 'item-actions' }, sessions, activity, toggle),
    panel,
  );
}

async function showUsers() {
  const query = new URLSearchParams({ page: String(state.page), page_size: String(PAGE_SIZE) });
  if (state.query !== '') query.set('query', state.query);
  /** @type {{items: UserView[], total: number | undefined}} */
  const { items: users, total } = listOf(await api('GET', `/v1/manager/users?${query}`), 'users');
  const list = byId('users', HTMLUListElement);
  list.replaceChildren(...users.map(userItem));
  if (users.length === 0) list.append(h('li', { class: 'empty' }, state.query === '' ? t('admin.no_users') : t('admin.no_users_match', { query: state.query })));
  const pages = total === undefined ? undefined : Math.max(1, Math.ceil(total / PAGE_SIZE));
  say(byId('users-page', HTMLElement), pages === undefined || total === undefined ? t('admin.page', { page: state.page }) : tCount('admin.page_of', total, { page: state.page, pages }));
  byId('users-prev', HTMLButtonElement).disabled = state.page <= 1;
  byId('users-next', HTMLButtonElement).disabled = pages === undefined ? users.length < PAGE_SIZE : state.page >= pages;
}

/** @param {AuditView} event */
function auditItem(event) {
  const failed = event.result === 'fail';
  const where = [event.ip, browserWords(event.user_agent ?? '')].filter((part) => typeof part === 'string' && part !== '').join(' · ');
  const who = event.uid === null
    ? h('span', {}, t('admin.audit_no_account'))
    : h('button', { type: 'button', class: 'link mono', title: t('admin.audit_only_user') }, event.uid);
  if (who instanceof HTMLButtonElement && event.uid !== null) {
    const uid = event.uid;
    who.addEventListener('click', () => {
      byId('audit-uid', HTMLInputElement).value = uid;
      void showAudit();
    });
  }
  return h('li', {},
    h('span', { class: failed ? 'item-icon fail' : 'item-icon' }, icon(failed ? 'alert' : 'shield')),
    h('div', { class: 'item-main' },
      h('span', { class: 'item-title' }, eventWords(event), failed && h('span', { class: 'badge danger' }, t('admin.failed')),
        h('span', { class: 'muted small mono' }, event.type)),
      h('span', { class: 'item-meta' }, who, event.reason === null || event.reason === '' ? '' : ` · ${event.reason}`),
      h('span', { class: 'item-meta' }, absoluteTime(event.at), where === '' ? '' : ` · ${where}`),
    ),
  );
}

/** @param {boolean} [older] the next page down, appended, instead of the newest events */
async function showAudit(older = false) {
  const query = new URLSearchParams({ limit: String(AUDIT_LIMIT) });
  if (older && state.auditBefore !== null) query.set('before', String(state.auditBefore));
  const uid = byId('audit-uid', HTMLInputElement).value.trim();
  const type = byId('audit-type', HTMLSelectElement).value;
  const since = byId('audit-since', HTMLInputElement).value;
  if (uid !== '') query.set('uid', uid);
  if (type !== '') query.set('type', type);
  if (since !== '') query.set('since', String(new Date(since).getTime()));
  const list = byId('audit', HTMLUListElement);
  try {
    const body = await api('GET', `/v1/manager/audit?${query}`);
    /** @type {{items: AuditView[]}} */
    const { items: events } = listOf(body, 'events');
    if (older) list.append(...events.map(auditItem));
    else list.replaceChildren(...events.map(auditItem));
    if (list.childElementCount === 0) list.append(h('li', { class: 'empty' }, t('admin.audit_none')));
    state.auditBefore = typeof body?.next_before === 'number' ? body.next_before : null;
    byId('audit-older', HTMLButtonElement).hidden = state.auditBefore === null;
  } catch (error) {
    list.replaceChildren(h('li', { class: 'error' }, describeError(error, { forbidden: NOT_ADMIN, invalid_request: t('admin.audit_bad_filter') })));
  }
}

function wire() {
  byId('user-search', HTMLFormElement).addEventListener('submit', (event) => {
    event.preventDefault();
    state.query = byId('user-query', HTMLInputElement).value.trim();
    state.page = 1;
    say(byId('users-status', HTMLElement), '');
    void showUsers().catch((error) => showPageError(describeError(error, { forbidden: NOT_ADMIN })));
  });
  /** @param {number} step */
  const turn = (step) => () => {
    state.page = Math.max(1, state.page + step);
    void showUsers().catch((error) => showPageError(describeError(error, { forbidden: NOT_ADMIN })));
  };
  byId('users-prev', HTMLButtonElement).addEventListener('click', turn(-1));
  byId('users-next', HTMLButtonElement).addEventListener('click', turn(1));
  byId('audit-filters', HTMLFormElement).addEventListener('submit', (event) => {
    event.preventDefault();
    void showAudit();
  });
  const older = byId('audit-older', HTMLButtonElement);
  older.addEventListener('click', () => void busy(older, () => showAudit(true)));
}

signedInPage(async (user) => {
  if (user.role !== 'admin') {
    byId('users-card', HTMLElement).hidden = true;
    byId('audit-card', HTMLElement).hidden = true;
    showPageError(NOT_ADMIN);
    return;
  }
  state.me = user.uid;
  wire();
  await Promise.all([
    showUsers().catch((error) => showPageError(describeError(error, { forbidden: NOT_ADMIN }))),
    showAudit(),
  ]);
}).catch(startFailed);
