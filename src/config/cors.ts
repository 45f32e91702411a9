/**
 * The `cors` section: the origins of web clients served from elsewhere (a web IM client on its own
 * domain) that may call the API from a browser (docs/api.md §1). Exact origins only: a wildcard, a
 * path or a pattern would let any page read answers meant for the listed one.
 */
import { ConfigError } from './errors.ts';

export interface CorsConfig {
  /** `scheme://host[:port]`, compared with the request's Origin header as they are. Empty: no CORS. */
  readonly origins: readonly string[];
  /** How long a browser may keep a preflight answer. */
  readonly maxAgeSeconds: number;
}

export function parseCorsConfig(value: unknown): CorsConfig {
  const cors = value ?? {};
  if (cors === null || typeof cors !== 'object' || Array.isArray(cors)) throw new ConfigError('cors', 'an object', value);
  const { origins = [], max_age_seconds: maxAge = 600 } = cors as Record<string, unknown>;
  if (!Array.isArray(origins)) throw new ConfigError('cors.origins', 'a list of origins', origins);
  const parsed = origins.map((origin, i) => exactOrigin(origin, `cors.origins[${i}]`));
  if (typeof maxAge !== 'number' || !Number.isInteger(maxAge) || maxAge < 0 || maxAge > 86_400) {
    throw new ConfigError('cors.max_age_seconds', 'an integer from 0 to 86400', maxAge);
  }
  return { origins: [...new Set(parsed)], maxAgeSeconds: maxAge };
}

/** `https://im.example.com` or `http://127.0.0.1:8080` as a browser sends it in Origin: nothing more. */
function exactOrigin(value: unknown, key: string): string {
  const expected = 'an exact origin such as https://im.example.com (scheme, host and port only; no wildcard)';
  if (typeof value !== 'string' || !URL.canParse(value)) throw new ConfigError(key, expected, value);
  const url = new URL(value);
  // A host of letters, digits, dots and dashes (or an IPv6 literal): `*` would parse as a host name.
  const plainHost = /^([a-z0-9-]+\.)*[a-z0-9-]+$|^\[[0-9a-f:.]+\]$/.test(url.hostname);
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.origin !== value || !plainHost) throw new ConfigError(key, expected, value);
  return value;
}
