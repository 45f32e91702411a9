/**
 * Where the browser goes after SSO. An open redirect here hands the handoff code (and a
 * convincing phishing page) to whoever wrote the link, so: relative paths only, unless the host is
 * listed. octo-server let `/\evil.com` through (spec §7 item 11): browsers read `\` as `/`.
 */
import { invalidRequest } from '../../core/errors.ts';

const MAX_LENGTH = 2048;
// Control characters, whitespace and backslashes: every one has been used to make a browser and a
// validator disagree about where a URL points.
const UNSAFE = /[\u0000-\u0020\u007f-\u009f\\\u2028\u2029]/;

/** The validated `return_to` (default `/`); throws invalid_request naming the field otherwise. */
export function validateReturnTo(value: string | undefined, allowedHosts: readonly string[]): string {
  if (value === undefined || value === '') return '/';
  if (value.length > MAX_LENGTH || UNSAFE.test(value)) throw refused();
  if (value.startsWith('/')) {
    if (value.startsWith('//')) throw refused();
    return value;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw refused();
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw refused();
  if (url.username !== '' || url.password !== '') throw refused();
  const host = url.host.toLowerCase();
  if (!allowedHosts.some((allowed) => allowed === host || allowed === url.hostname.toLowerCase())) throw refused();
  return url.href;
}

/** `return_to` with one query parameter added (lk_code or oidc_error), fragment kept last. */
export function withParameter(returnTo: string, name: string, value: string): string {
  const absolute = !returnTo.startsWith('/');
  const url = new URL(returnTo, 'http://relative.invalid');
  url.searchParams.set(name, value);
  return absolute ? url.href : `${url.pathname}${url.search}${url.hash}`;
}

function refused() {
  return invalidRequest('return_to', 'return_to must be a relative path or a URL on a listed host');
}
