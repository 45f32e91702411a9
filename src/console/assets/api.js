// @ts-check
/**
 * The console's only way to the API. The session rides in an HttpOnly cookie that this script
 * cannot read; what it does read is the CSRF cookie, whose value it echoes in `x-latchkey-csrf`
 * (see src/http/console-session.ts). Every call that finds the session gone (401 `unauthorized`)
 * leaves for the sign-in page: a console signed out elsewhere (revoked, banned) stops on its
 * next action instead of showing stale data.
 */

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {Record<string, unknown> | undefined} details
   * @param {number | undefined} retryAfter seconds, from Retry-After
   */
  constructor(status, code, message, details, retryAfter) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }

  /** @returns {string | undefined} */
  get field() {
    const field = this.details?.field;
    return typeof field === 'string' ? field : undefined;
  }
}

const CSRF_COOKIES = ['__Host-latchkey_csrf', 'latchkey_csrf'];

function csrfToken() {
  for (const pair of document.cookie.split(';')) {
    const at = pair.indexOf('=');
    if (at > 0 && CSRF_COOKIES.includes(pair.slice(0, at).trim())) return pair.slice(at + 1).trim();
  }
  return null;
}

/** Whether this browser holds a console session (it may still have been revoked). */
export function hasSessionCookie() {
  return csrfToken() !== null;
}

/** Pages a sign-in may return to; anything else in `next` is ignored (no open redirect). */
export const RETURN_PAGES = ['/account', '/admin'];

/** Leaves for the sign-in page, saying why, and remembering where to come back to. */
/** Where the sign-in page finds why this tab's session ended (this tab's sessionStorage only). */
export const ENDED_KEY = 'latchkey.ended';

/** Set once this page has left: calls answered 401 at once (a list and a count) leave only once. */
let leaving = false;

/** @param {Record<string, unknown>} [ended] the 401's details: why the session ended, when known */
export function signInAgain(ended) {
  if (leaving) return;
  leaving = true;
  if (ended !== undefined) sessionStorage.setItem(ENDED_KEY, JSON.stringify(ended));
  const query = new URLSearchParams({ signed_out: '1' });
  if (RETURN_PAGES.includes(location.pathname)) query.set('next', location.pathname);
  location.replace(`/?${query}`);
}

/**
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @param {{signal?: AbortSignal, leaveOnUnauthorized?: boolean}} [options]
 * @returns {Promise<any>}
 */
export async function api(method, path, body, options = {}) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json', 'x-latchkey-session': 'cookie' };
  const csrf = csrfToken();
  if (csrf !== null) headers['x-latchkey-csrf'] = csrf;
  if (body !== undefined) headers['content-type'] = 'application/json';
  /** @type {Response} */
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
      signal: options.signal,
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error;
    throw new ApiError(0, 'network', 'network error', undefined, undefined);
  }
  const text = await response.text();
  /** @type {any} */
  let parsed = null;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    parsed = null;
  }
  if (response.ok) return parsed;
  const code = typeof parsed?.code === 'string' ? parsed.code : `http_${response.status}`;
  if (code === 'unauthorized' && options.leaveOnUnauthorized !== false) {
    signInAgain(parsed?.details !== null && typeof parsed?.details === 'object' ? parsed.details : undefined);
    // The page is going away: settle nothing, so no caller paints an error over it meanwhile.
    return new Promise(() => {});
  }
  const retryAfter = Number(response.headers.get('retry-after'));
  throw new ApiError(
    response.status,
    code,
    typeof parsed?.msg === 'string' ? parsed.msg : response.statusText,
    parsed?.details !== null && typeof parsed?.details === 'object' ? parsed.details : undefined,
    Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
  );
}
