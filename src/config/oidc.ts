/**
 * The `oidc` section of the config (README, "SSO"): the OpenID providers latchkey is a relying
 * party of, the key that encrypts their refresh tokens at rest, and the sync worker's interval.
 * Validated here, at start, so a typo stops the server instead of breaking the first login.
 */
import { isIP } from 'node:net';
import { ConfigError, HIDDEN_VALUE } from './errors.ts';
import { bool, int } from './values.ts';

export interface OidcProviderConfig {
  /** In the routes: `/v1/auth/oidc/<id>/…`. */
  readonly id: string;
  /** Shown on the login button (appconfig). */
  readonly name: string;
  readonly enabled: boolean;
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Must be this provider's `/v1/auth/oidc/<id>/callback` as the browser reaches it. */
  readonly redirectUri: string;
  readonly scopes: readonly string[];
  /** Links a first SSO login to the account with that email, only if the IdP says it verified it. */
  readonly linkByVerifiedEmail: boolean;
  readonly linkByVerifiedPhone: boolean;
  readonly allowNewUsers: boolean;
  /** Hosts an absolute `return_to` may point at; relative paths are always allowed. */
  readonly returnToHosts: readonly string[];
  /** Where the IdP sends the browser after RP-initiated logout; must be registered at the IdP. */
  readonly postLogoutRedirectUri: string | undefined;
  /** Plain http to the IdP, for a loopback IdP in development and tests only. */
  readonly allowInsecureHttp: boolean;
  readonly timeoutSeconds: number;
}

export interface TokenKey {
  readonly id: string;
  /** 32 bytes (AES-256). */
  readonly key: Buffer;
}

export interface OidcConfig {
  readonly providers: readonly OidcProviderConfig[];
  /** The first key encrypts; every key decrypts (rotation: put the new key first, keep the old ones). */
  readonly tokenKeys: readonly TokenKey[];
  /** Seconds between sync worker runs; 0 turns the worker off. */
  readonly syncIntervalSeconds: number;
  /** Discovery documents are fetched again this often (keys and endpoints rotate). */
  readonly discoveryRefreshSeconds: number;
  /** Per client IP, for authorize, callback and exchange each. */
  readonly rateLimit: { readonly max: number; readonly windowSeconds: number };
}

type Json = Record<string, unknown>;

const PROVIDER_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const KEY_ID = /^[A-Za-z0-9_.-]{1,32}$/;
const HOST = /^[a-z0-9.-]+(:\d{1,5})?$/;
const SCOPE = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

export const DEFAULT_OIDC_SCOPES: readonly string[] = ['openid', 'profile', 'email'];

export function parseOidcConfig(value: unknown): OidcConfig {
  const raw = object(value, 'oidc');
  const list = raw.providers ?? [];
  if (!Array.isArray(list)) throw new ConfigError('oidc.providers', 'a list of providers', list);
  const providers = list.map((entry, index) => provider(entry, `oidc.providers[${index}]`));
  const seen = new Set<string>();
  for (const p of providers) {
    if (seen.has(p.id)) throw new ConfigError('oidc.providers', 'unique provider ids', p.id);
    seen.add(p.id);
  }
  const tokenKeys = raw.token_key === undefined ? [] : parseKeys(raw.token_key, 'oidc.token_key');
  if (providers.length > 0 && tokenKeys.length === 0) {
    throw new ConfigError('oidc.token_key', '{id, key: base64 of 32 bytes} when providers are configured', undefined);
  }
  const rateLimit = object(raw.rate_limit ?? {}, 'oidc.rate_limit');
  return {
    providers,
    tokenKeys,
    syncIntervalSeconds: int(raw.sync_interval, 'oidc.sync_interval', 900, 0, 7 * 86_400),
    discoveryRefreshSeconds: int(raw.discovery_refresh, 'oidc.discovery_refresh', 3600, 10, 7 * 86_400),
    rateLimit: {
      max: int(rateLimit.max, 'oidc.rate_limit.max', 60, 1, 1_000_000),
      windowSeconds: int(rateLimit.window_seconds, 'oidc.rate_limit.window_seconds', 60, 1, 86_400),
    },
  };
}

function provider(value: unknown, at: string): OidcProviderConfig {
  const raw = object(value, at);
  const id = str(raw.id, `${at}.id`);
  if (!PROVIDER_ID.test(id)) throw new ConfigError(`${at}.id`, 'lower-case letters, digits, _ and - (up to 64)', id);
  const allowInsecureHttp = bool(raw.allow_insecure_http, `${at}.allow_insecure_http`, false);
  // Plain http to an IdP anywhere but this machine would let the network forge its keys and tokens.
  if (allowInsecureHttp && !isLoopback(URL.parse(str(raw.issuer, `${at}.issuer`))?.hostname ?? '')) {
    throw new ConfigError(`${at}.allow_insecure_http`, 'false unless the issuer is a loopback address', true);
  }
  const issuer = url(raw.issuer, `${at}.issuer`, allowInsecureHttp);
  const scopes = list(raw.scopes, `${at}.scopes`, DEFAULT_OIDC_SCOPES);
  if (!scopes.includes('openid') || !scopes.every((scope) => SCOPE.test(scope))) {
    throw new ConfigError(`${at}.scopes`, 'scope names including "openid"', scopes);
  }
  const returnToHosts = list(raw.return_to_hosts, `${at}.return_to_hosts`, []).map((host) => host.toLowerCase());
  const badHost = returnToHosts.find((host) => !HOST.test(host));
  if (badHost !== undefined) throw new ConfigError(`${at}.return_to_hosts`, 'bare host names (host or host:port)', badHost);
  const secret = raw.client_secret;
  if (typeof secret !== 'string' || secret === '') throw new ConfigError(`${at}.client_secret`, 'a non-empty string', '***');
  return {
    id,
    name: raw.name === undefined ? id : str(raw.name, `${at}.name`),
    enabled: bool(raw.enabled, `${at}.enabled`, true),
    issuer,
    clientId: str(raw.client_id, `${at}.client_id`),
    clientSecret: secret,
    redirectUri: url(raw.redirect_uri, `${at}.redirect_uri`, true),
    scopes,
    linkByVerifiedEmail: bool(raw.link_by_verified_email, `${at}.link_by_verified_email`, false),
    linkByVerifiedPhone: bool(raw.link_by_verified_phone, `${at}.link_by_verified_phone`, false),
    allowNewUsers: bool(raw.allow_new_users, `${at}.allow_new_users`, true),
    returnToHosts,
    postLogoutRedirectUri: raw.post_logout_redirect_uri === undefined
      ? undefined
      : url(raw.post_logout_redirect_uri, `${at}.post_logout_redirect_uri`, true),
    allowInsecureHttp,
    timeoutSeconds: int(raw.timeout_seconds, `${at}.timeout_seconds`, 10, 1, 120),
  };
}

/** A key or a list of keys `{id, key}` (the first seals, all open): `oidc.token_key`, `mfa.secret_key`. */
export function parseKeys(value: unknown, path: string): TokenKey[] {
  const entries = Array.isArray(value) ? value : [value];
  if (entries.length === 0) throw new ConfigError(path, 'a key or a non-empty list of keys', value);
  const parsed = entries.map((entry, index) => {
    const at = Array.isArray(value) ? `${path}[${index}]` : path;
    const raw = object(entry, at);
    const id = str(raw.id, `${at}.id`);
    if (!KEY_ID.test(id)) throw new ConfigError(`${at}.id`, 'up to 32 of A-Z a-z 0-9 _ . -', id);
    const key = typeof raw.key === 'string' && /^[A-Za-z0-9+/_-]+={0,2}$/.test(raw.key) ? Buffer.from(raw.key, 'base64') : null;
    // The key itself is never echoed: config errors end up in logs.
    if (key === null || key.length !== 32) throw new ConfigError(`${at}.key`, 'base64 of exactly 32 random bytes', '***');
    return { id, key };
  });
  if (new Set(parsed.map((k) => k.id)).size !== parsed.length) throw new ConfigError(path, 'unique key ids', '***');
  return parsed;
}

export function isLoopback(hostname: string): boolean {
  const bare = hostname.replace(/^\[|\]$/g, '');
  if (bare === 'localhost') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  return bare === '::1';
}

function object(value: unknown, key: string): Json {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as Json;
  // Not echoed: what stands where an object belongs may be a secret pasted one level too high.
  throw new ConfigError(key, 'an object', HIDDEN_VALUE);
}

function str(value: unknown, key: string): string {
  if (typeof value !== 'string' || value === '') throw new ConfigError(key, 'a non-empty string', value);
  return value;
}



function list(value: unknown, key: string, fallback: readonly string[]): string[] {
  if (value === undefined) return [...fallback];
  const items = typeof value === 'string' ? value.split(/[\s,]+/).filter((v) => v !== '') : value;
  if (Array.isArray(items) && items.every((item): item is string => typeof item === 'string' && item !== '')) return items;
  throw new ConfigError(key, 'a list of strings', value);
}

function url(value: unknown, key: string, allowLoopbackHttp: boolean): string {
  const text = str(value, key);
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw new ConfigError(key, 'an absolute URL', text);
  }
  const httpOk = parsed.protocol === 'http:' && allowLoopbackHttp && isLoopback(parsed.hostname);
  if (parsed.protocol !== 'https:' && !httpOk) throw new ConfigError(key, 'an https URL (http only for a loopback address)', text);
  if (parsed.username !== '' || parsed.password !== '' || parsed.hash !== '') throw new ConfigError(key, 'a URL without credentials or fragment', text);
  return text;
}
