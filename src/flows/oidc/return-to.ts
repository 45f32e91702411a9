/**
 * Where the browser goes after SSO. An open redirect here hands the handoff code (and a
 * convincing phishing page) to whoever wrote the link, so: relative paths only, unless the host is
 * listed. octo-server let `/\evil.com` through (docs/octo-server.md §8.11): browsers read `\` as `/`.
 *
 * The check runs on the very string that is sent. A value is first normalised by the WHATWG URL
 * parser (the one browsers use to resolve `Location`), which removes dot segments, `%2e` included:
 * `/.//evil/x` becomes `//evil/x`, a URL on another host. Checking the raw value and sending the
 * parsed one is how that passed once; now only the normalised string is checked, stored and sent,
 * and it must parse back to itself.
 */
import { invalidRequest } from '../../core/errors.ts';
import { isLoopback } from '../../config/oidc.ts';

const MAX_LENGTH = 2048;
// Control characters, whitespace and backslashes: every one has been used to make a browser and a
// validator disagree about where a URL points.
const UNSAFE = /[\u0000-\u0020\u007f-\u009f\\\u2028\u2029]/;
/** Any special-scheme base resolves a path-absolute value the same way as latchkey's own origin. */
const RELATIVE_BASE = 'https://relative.invalid';

/** The normalised `return_to` (default `/`); throws invalid_request naming the field otherwise. */
export function validateReturnTo(value: string | undefined, allowedHosts: readonly string[]): string {
  if (value === undefined || value === '') return '/';
  if (value.length > MAX_LENGTH) throw refused();
  const normalised = normalise(value);
  if (normalised === null || !isSafeTarget(normalised, allowedHosts)) throw refused();
  return normalised;
}

/**
 * Whether a `Location` value keeps the browser on latchkey (a path with exactly one leading `/`)
 * or sends it to a listed host, over https unless the host is loopback (the handoff code must not
 * cross a network in clear text). A value the parser would rewrite is refused: what is checked
 * must be what the browser follows.
 */
export function isSafeTarget(location: string, allowedHosts: readonly string[]): boolean {
  if (UNSAFE.test(location) || normalise(location) !== location) return false;
  if (location.startsWith('/')) return !location.startsWith('//');
  const url = URL.parse(location);
  if (url === null || url.username !== '' || url.password !== '') return false;
  const secure = url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url.hostname));
  return secure && allowedHosts.some((allowed) => allowed === url.host || allowed === url.hostname);
}

/** `return_to` with one query parameter added (lk_code or oidc_error), fragment kept last. */
export function withParameter(returnTo: string, name: string, value: string): string {
  const absolute = !returnTo.startsWith('/');
  const url = new URL(returnTo, RELATIVE_BASE);
  url.searchParams.set(name, value);
  return absolute ? url.href : `${url.pathname}${url.search}${url.hash}`;
}

/**
 * The callback's `Location`: checked again there, on the final string, so a stored value that
 * slipped past authorize (an older release, a future code path) still cannot leave latchkey.
 */
export function callbackLocation(returnTo: string, allowedHosts: readonly string[], name: string, value: string): string {
  if (!isSafeTarget(returnTo, allowedHosts)) throw refused();
  const location = withParameter(returnTo, name, value);
  if (!isSafeTarget(location, allowedHosts)) throw refused();
  return location;
}

/** The string the browser will act on, or null when it does not parse as an http(s) URL or path. */
function normalise(value: string): string | null {
  if (UNSAFE.test(value)) return null;
  if (value.startsWith('/')) {
    const url = URL.parse(value, RELATIVE_BASE);
    if (url === null || url.origin !== RELATIVE_BASE) return null;
    return `${url.pathname}${url.search}${url.hash}`;
  }
  const url = URL.parse(value);
  if (url === null || (url.protocol !== 'https:' && url.protocol !== 'http:')) return null;
  return url.href;
}

function refused() {
  return invalidRequest('return_to', 'return_to must be a relative path or an https URL on a listed host');
}
