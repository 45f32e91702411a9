// @ts-check
/**
 * Words for people: error codes (docs/api.md §3), login methods, audit events and times.
 * The API's `msg` is for developers; the console never shows it, only what is mapped here from
 * the stable `code`.
 */
import { ApiError } from './api.js';

/** @type {Record<string, string>} */
const ERRORS = {
  invalid_request: 'Some of the details aren’t valid. Check them and try again.',
  unauthorized: 'Your session has ended. Please sign in again.',
  invalid_credentials: 'That username and password don’t match. Check them and try again.',
  forbidden: 'You don’t have permission to do that.',
  account_disabled: 'This account has been disabled. Contact your administrator if you think this is a mistake.',
  not_found: 'That could not be found. It may already be gone.',
  conflict: 'That is already taken.',
  expired: 'That has expired or was already used. Please start again.',
  rate_limited: 'Too many attempts in a short time. Please wait a little and try again.',
  payload_too_large: 'That is too long.',
  internal_error: 'Something went wrong on our side. Please try again.',
  upstream_unavailable: 'The service is temporarily unavailable. Please try again in a moment.',
  network: 'Can’t reach the server. Check your connection and try again.',
};

/**
 * Why this device was signed out (the 401's `details`, docs/api.md §3), in words: a device that
 * can tell "you signed in on another phone" from an expiry does not sign in again and kick back.
 * @param {unknown} ended
 */
export function endedWords(ended) {
  const fallback = 'You’ve been signed out. Sign in again to continue.';
  if (ended === null || typeof ended !== 'object') return fallback;
  const { reason, ended_at: endedAt, by } = /** @type {{reason?: unknown, ended_at?: unknown, by?: {device_name?: unknown}}} */ (ended);
  const at = typeof endedAt === 'number' ? new Date(endedAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '';
  const device = typeof by?.device_name === 'string' && by.device_name !== '' ? by.device_name : 'another device';
  switch (reason) {
    case 'replaced': return `Signed out: you signed in on ${device} at ${at}.`;
    case 'cap': return `Signed out: ${device} signed in at ${at}, one sign-in too many for this kind of device.`;
    case 'revoked': return `Signed out from another of your devices at ${at}. Sign in again to continue.`;
    case 'logout': return 'You signed out.';
    case 'admin': return `Signed out by an administrator at ${at}.`;
    case 'banned': return ERRORS.account_disabled ?? fallback;
    case 'password_changed': return `Signed out: your password was changed at ${at}.`;
    case 'password_reset': return `Signed out: your password was reset at ${at}.`;
    case 'expired': return 'Your session expired. Sign in again to continue.';
    case 'idp_logout': return `Signed out by your organization’s sign-in at ${at}.`;
    default: return fallback;
  }
}

/** @param {number} seconds */
function waitWords(seconds) {
  if (seconds < 60) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}

/**
 * @param {unknown} error
 * @param {Record<string, string>} [overrides] words for this form, by code
 */
export function describeError(error, overrides = {}) {
  if (!(error instanceof ApiError)) return ERRORS.internal_error ?? '';
  if (error.code === 'rate_limited' && error.retryAfter !== undefined) {
    return `Too many attempts in a short time. Please try again in ${waitWords(error.retryAfter)}.`;
  }
  return overrides[error.code] ?? ERRORS[error.code] ?? ERRORS.internal_error ?? '';
}

/** `?oidc_error=` codes from the SSO callback (src/flows/oidc/failure.ts), and exchange failures. */
/** @type {Record<string, string>} */
const SSO_ERRORS = {
  access_denied: 'Sign-in was cancelled at your organisation’s sign-in page.',
  login_failed: 'Single sign-on could not be completed. Please try again.',
  idp_unavailable: 'Your organisation’s sign-in service did not answer. Please try again in a moment.',
  account_not_found: 'There is no account for you here yet. Ask your administrator to give you access.',
  account_disabled: ERRORS.account_disabled ?? '',
  server_error: ERRORS.internal_error ?? '',
  expired: 'That sign-in took too long or was already used. Please try again.',
  not_started_here: 'That sign-in link was not started in this browser, so it was not used. Sign in below.',
};

/** @param {string} code */
export function describeSsoError(code) {
  return SSO_ERRORS[code] ?? 'Single sign-on could not be completed. Please try again.';
}

/** @type {Record<string, string>} */
const METHODS = {
  password: 'Password',
  register: 'Sign-up',
  code: 'One-time code',
  qr: 'QR code from a phone',
  oidc: 'Single sign-on',
};

/** @type {Record<string, string>} */
const SIGNED_IN = {
  password: 'Signed in with a password',
  register: 'Signed in after creating the account',
  code: 'Signed in with a one-time code',
  qr: 'Signed in by scanning a QR code',
  oidc: 'Signed in with single sign-on',
};

/** @param {string} method */
export function methodWords(method) {
  return METHODS[method] ?? method;
}

/** @type {Record<number, string>} */
const FLAGS = { 0: 'Phone app', 1: 'Web browser', 2: 'Desktop app' };

/** @param {number} flag */
export function flagWords(flag) {
  return FLAGS[flag] ?? 'Device';
}

/**
 * @param {{type: string, result: string, reason?: string | null}} event
 * @returns {string}
 */
export function eventWords(event) {
  const reason = event.reason ?? '';
  const failed = event.result === 'fail';
  switch (event.type) {
    case 'login':
      if (!failed) return SIGNED_IN[reason] ?? 'Signed in';
      if (reason === 'invalid_credentials') return 'Failed sign-in: wrong password';
      if (reason === 'account_disabled') return 'Sign-in refused: account disabled';
      if (reason.startsWith('code:')) return 'Failed sign-in with a one-time code';
      if (reason === 'password_changed') return 'Sign-in cancelled: the password changed meanwhile';
      return 'Failed sign-in';
    case 'register':
      return 'Account created';
    case 'logout':
      return 'Signed out';
    case 'revoke': {
      if (reason === 'user') return 'Signed out a device';
      if (reason === 'device') return 'Removed a device';
      if (reason === 'replaced') return 'Signed out by a newer sign-in on the same kind of device';
      if (reason === 'cap') return 'Signed out: too many devices of one kind, the oldest went';
      const others = /^others:(\d+)$/.exec(reason);
      if (others !== null) return `Signed out everywhere else (${others[1]} device${others[1] === '1' ? '' : 's'})`;
      return 'All sessions ended by an administrator';
    }
    case 'password_change':
      return failed ? 'Failed password change: wrong current password' : 'Password changed';
    case 'password_reset':
      return failed ? 'Failed password reset' : 'Password reset with a one-time code';
    case 'code_sent':
      return failed ? 'A one-time code could not be sent' : 'One-time code sent';
    case 'qr_scan':
      return failed ? 'QR code scan refused' : 'Scanned a sign-in QR code';
    case 'qr_grant':
      return failed ? 'QR sign-in approval refused' : 'Approved a sign-in from another device';
    case 'qr_reject':
      return 'Declined a sign-in from another device';
    case 'ban':
      return 'Account disabled by an administrator';
    case 'unban':
      return 'Account enabled by an administrator';
    case 'role_change':
      return 'Role changed by an administrator';
    case 'oidc_callback':
      return failed ? 'Failed single sign-on' : 'Identity confirmed by single sign-on';
    case 'oidc_exchange':
      return failed ? 'Single sign-on not completed' : 'Signed in with single sign-on';
    case 'oidc_logout':
      return 'Signed out of single sign-on';
    case 'oidc_backchannel':
      return 'Signed out by your organisation’s sign-in service';
    case 'oidc_sync':
      return 'Checked with your organisation’s sign-in service';
    default:
      return `${event.type.replaceAll('_', ' ')}${failed ? ' (failed)' : ''}`;
  }
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/** @param {number} ms Unix time in milliseconds */
export function absoluteTime(ms) {
  return dateTime.format(new Date(ms));
}

/** "just now", "5 minutes ago", "yesterday"… then the date. @param {number} ms */
export function relativeTime(ms) {
  const seconds = Math.round((ms - Date.now()) / 1000);
  if (Math.abs(seconds) < 60) return 'just now';
  const minutes = Math.round(seconds / 60);
  if (Math.abs(minutes) < 60) return relative.format(minutes, 'minute');
  const hours = Math.round(minutes / 60);
  if (Math.abs(hours) < 24) return relative.format(hours, 'hour');
  const days = Math.round(hours / 24);
  if (Math.abs(days) < 7) return relative.format(days, 'day');
  return absoluteTime(ms);
}

/**
 * A short browser description from a user agent ("Chrome on Linux"), for audit lines.
 * @param {string} userAgent
 */
export function browserWords(userAgent) {
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
  if (browser === '' && system === '') return userAgent === '' ? '' : 'an app';
  if (browser === '') return system;
  return system === '' ? browser : `${browser} on ${system}`;
}
