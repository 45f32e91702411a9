// @ts-check
/**
 * Words for people: error codes (docs/api.md §3), login methods, audit events and times, all from
 * the catalogue of the page's language (i18n.js). The API's `msg` is for developers; the console
 * never shows it, only what is mapped here from the stable `code`.
 */
import { ApiError } from './api.js';
import { known, locale, t, tCount } from './i18n.js';

/** Error codes the console has words for (docs/api.md §3); any other is an internal error to a person. */
const ERROR_CODES = [
  'invalid_request', 'unauthorized', 'invalid_credentials', 'forbidden', 'account_disabled', 'not_found', 'conflict',
  'expired', 'rate_limited', 'payload_too_large', 'internal_error', 'upstream_unavailable', 'network',
];

/** @param {string} code */
function errorWords(code) {
  const key = `error.${code}`;
  return ERROR_CODES.includes(code) && known(key) ? t(key) : t('error.internal_error');
}

/** A time of day in the console's language. @param {number} ms */
function timeOfDay(ms) {
  return new Date(ms).toLocaleTimeString(locale, { hour: '2-digit', minute: '2-digit' });
}

/**
 * Why this device was signed out (the 401's `details`, docs/api.md §3), in words: a device that
 * can tell "you signed in on another phone" from an expiry does not sign in again and kick back.
 * @param {unknown} ended
 */
export function endedWords(ended) {
  const fallback = t('ended.fallback');
  if (ended === null || typeof ended !== 'object') return fallback;
  const { reason, ended_at: endedAt, by } = /** @type {{reason?: unknown, ended_at?: unknown, by?: {device_name?: unknown}}} */ (ended);
  const time = typeof endedAt === 'number' ? timeOfDay(endedAt) : '';
  const device = typeof by?.device_name === 'string' && by.device_name !== '' ? by.device_name : t('ended.another_device');
  switch (reason) {
    case 'replaced': return t('ended.replaced', { device, time });
    case 'cap': return t('ended.cap', { device, time });
    case 'revoked': return t('ended.revoked', { time });
    case 'logout': return t('ended.logout');
    case 'admin': return t('ended.admin', { time });
    case 'banned': return t('error.account_disabled');
    case 'password_changed': return t('ended.password_changed', { time });
    case 'password_reset': return t('ended.password_reset', { time });
    case 'expired': return t('ended.expired');
    case 'idp_logout': return t('ended.idp_logout', { time });
    case 'passkey_removed': return t('ended.passkey_removed', { time });
    default: return fallback;
  }
}

/** @param {number} seconds */
function waitWords(seconds) {
  if (seconds < 60) return tCount('wait.seconds', seconds);
  return tCount('wait.minutes', Math.ceil(seconds / 60));
}

/**
 * @param {unknown} error
 * @param {Record<string, string>} [overrides] words for this form, by code
 */
export function describeError(error, overrides = {}) {
  if (!(error instanceof ApiError)) return t('error.internal_error');
  if (error.code === 'rate_limited' && error.retryAfter !== undefined) {
    return t('error.rate_limited_wait', { wait: waitWords(error.retryAfter) });
  }
  return overrides[error.code] ?? errorWords(error.code);
}

/** `?oidc_error=` codes from the SSO callback (src/flows/oidc/failure.ts), and exchange failures. */
/** @param {string} code */
export function describeSsoError(code) {
  if (code === 'account_disabled') return t('error.account_disabled');
  if (code === 'server_error') return t('error.internal_error');
  const key = `sso.${code}`;
  return known(key) ? t(key) : t('sso.login_failed');
}

const METHODS = ['password', 'register', 'code', 'qr', 'oidc', 'passkey'];

/** @param {string} method */
export function methodWords(method) {
  const key = `method.${method}`;
  return METHODS.includes(method) && known(key) ? t(key) : method;
}

/** @param {number} flag */
export function flagWords(flag) {
  const key = `flag.${flag}`;
  return [0, 1, 2].includes(flag) && known(key) ? t(key) : t('flag.other');
}

/**
 * @param {{type: string, result: string, reason?: string | null}} event
 * @returns {string}
 */
export function eventWords(event) {
  const reason = event.reason ?? '';
  const failed = event.result === 'fail';
  switch (event.type) {
    case 'login': {
      if (!failed) {
        if (reason.endsWith(':mfa_required')) return t('event.login_mfa_required');
        const key = `event.login.${reason}`;
        return METHODS.includes(reason) && known(key) ? t(key) : t('event.login');
      }
      if (reason === 'invalid_credentials') return t('event.login_wrong_password');
      if (reason === 'account_disabled') return t('event.login_disabled');
      if (reason.startsWith('code:')) return t('event.login_code_failed');
      if (reason.startsWith('passkey:')) return t('event.login_passkey_failed');
      if (reason === 'password_changed') return t('event.login_password_changed');
      return t('event.login_failed');
    }
    case 'register':
      return t('event.register');
    case 'logout':
      return t('event.logout');
    case 'revoke': {
      if (reason === 'user') return t('event.revoke_user');
      if (reason === 'device') return t('event.revoke_device');
      if (reason === 'replaced') return t('event.revoke_replaced');
      if (reason === 'cap') return t('event.revoke_cap');
      if (reason.startsWith('alert:')) return t('event.revoke_alert');
      const others = /^others:(\d+)$/.exec(reason);
      if (others !== null) return tCount('event.revoke_others', Number(others[1]));
      const passkey = /^passkey:(\d+)$/.exec(reason);
      if (passkey !== null) return tCount('event.revoke_passkey', Number(passkey[1]));
      return t('event.revoke_admin');
    }
    case 'password_change':
      return t(failed ? 'event.password_change_failed' : 'event.password_change');
    case 'password_reset':
      return t(failed ? 'event.password_reset_failed' : 'event.password_reset');
    case 'code_sent':
      return t(failed ? 'event.code_sent_failed' : 'event.code_sent');
    case 'qr_scan':
      return t(failed ? 'event.qr_scan_failed' : 'event.qr_scan');
    case 'qr_grant':
      return t(failed ? 'event.qr_grant_failed' : 'event.qr_grant');
    case 'qr_reject':
      return t('event.qr_reject');
    case 'ban':
      return t('event.ban');
    case 'unban':
      return t('event.unban');
    case 'role_change':
      return t('event.role_change');
    case 'oidc_callback':
      return t(failed ? 'event.oidc_callback_failed' : 'event.oidc_callback');
    case 'oidc_exchange':
      return t(failed ? 'event.oidc_exchange_failed' : 'event.oidc_exchange');
    case 'oidc_logout':
      return t('event.oidc_logout');
    case 'oidc_backchannel':
      return t('event.oidc_backchannel');
    case 'oidc_sync':
      return t('event.oidc_sync');
    // Second factors (docs/api.md §14).
    case 'mfa':
      if (failed) return t('event.mfa_failed');
      return t(reason === 'recovery' ? 'event.mfa_recovery' : 'event.mfa_totp');
    case 'mfa_enrol':
      if (failed) return t('event.mfa_enrol_failed');
      return t(reason === 'recovery_codes' ? 'event.mfa_enrol_codes' : 'event.mfa_enrol_totp');
    case 'mfa_remove':
      return t('event.mfa_remove');
    case 'step_up':
      return t(failed ? 'event.step_up_failed' : 'event.step_up');
    case 'passkey_register':
      return t(failed ? 'event.passkey_register_failed' : 'event.passkey_register');
    case 'passkey_remove':
      return t('event.passkey_remove');
    case 'new_device_alert':
      return t(failed ? 'event.new_device_alert_failed' : 'event.new_device_alert');
    default:
      return t(failed ? 'event.other_failed' : 'event.other', { type: event.type.replaceAll('_', ' ') });
  }
}

const dateTime = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' });
const relative = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' });

/** @param {number} ms Unix time in milliseconds */
export function absoluteTime(ms) {
  return dateTime.format(new Date(ms));
}

/** "just now", "5 minutes ago", "yesterday"… then the date. @param {number} ms */
export function relativeTime(ms) {
  const seconds = Math.round((ms - Date.now()) / 1000);
  if (Math.abs(seconds) < 60) return t('time.just_now');
  const minutes = Math.round(seconds / 60);
  if (Math.abs(minutes) < 60) return relative.format(minutes, 'minute');
  const hours = Math.round(minutes / 60);
  if (Math.abs(hours) < 24) return relative.format(hours, 'hour');
  const days = Math.round(hours / 24);
  if (Math.abs(days) < 7) return relative.format(days, 'day');
  return absoluteTime(ms);
}

/**
 * The browser and system a user agent names (product names, the same in every language).
 * @param {string} userAgent
 */
export function browserParts(userAgent) {
  const browser = /Edg\//.test(userAgent) ? 'Edge'
    : /OPR\//.test(userAgent) ? 'Opera'
      : /Firefox\//.test(userAgent) ? 'Firefox'
        : /Chrom(e|ium)\//.test(userAgent) ? 'Chrome'
          : /Safari\//.test(userAgent) ? 'Safari'
            : '';
  const system = /Android/.test(userAgent) ? 'Android'
    : /iPhone|iPad|iPod/.test(userAgent) ? 'iOS'
      : /Windows/.test(userAgent) ? 'Windows'
        : /Mac OS X|Macintosh/.test(userAgent) ? 'macOS'
          : /CrOS/.test(userAgent) ? 'ChromeOS'
            : /Linux/.test(userAgent) ? 'Linux'
              : '';
  return { browser, system };
}

/**
 * A short browser description from a user agent ("Chrome on Linux"), for audit lines.
 * @param {string} userAgent
 */
export function browserWords(userAgent) {
  const { browser, system } = browserParts(userAgent);
  if (browser === '' && system === '') return userAgent === '' ? '' : t('browser.app');
  if (browser === '') return system;
  return system === '' ? browser : t('browser.on', { browser, system });
}
