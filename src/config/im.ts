/**
 * The `im` section of the config (README, "IM bridge"): which IM server latchkey keeps in step with
 * its sessions (docs/design.md §3.4), and how the device_quit calls it missed are retried. Validated at start.
 */
import { ConfigError, HIDDEN_VALUE } from './errors.ts';
import { int } from './values.ts';

export interface WukongImConfig {
  /** WuKongIM's HTTP API, e.g. `http://127.0.0.1:5001`. */
  readonly apiUrl: string;
  /** Sent as header `token`; undefined when WuKongIM runs without a manager token. */
  readonly managerToken: string | undefined;
  readonly timeoutMs: number;
}

export interface ImQuitRetryConfig {
  /** How often each node looks for owed device_quit calls; also the first back-off. */
  readonly intervalMs: number;
  /** The back-off doubles up to this: an owed device_quit is retried at least this often, never given up. */
  readonly maxIntervalMs: number;
  /** After this many failed attempts an owed device_quit is reported overdue (logged, counted); it is still retried. */
  readonly maxAttempts: number;
}

export type ImConfig =
  | { readonly type: 'none'; readonly quitRetry: ImQuitRetryConfig }
  | { readonly type: 'wukongim'; readonly wukongim: WukongImConfig; readonly quitRetry: ImQuitRetryConfig };

type Json = Record<string, unknown>;

export function parseImConfig(value: unknown): ImConfig {
  const im = object(value ?? {}, 'im');
  const type = im.type ?? 'none';
  const retry = object(im.quit_retry ?? {}, 'im.quit_retry');
  const intervalMs = int(retry.interval_ms, 'im.quit_retry.interval_ms', 5000, 50, 3_600_000);
  const quitRetry: ImQuitRetryConfig = {
    intervalMs,
    maxIntervalMs: int(retry.max_interval_ms, 'im.quit_retry.max_interval_ms', Math.max(300_000, intervalMs), intervalMs, 3_600_000),
    maxAttempts: int(retry.max_attempts, 'im.quit_retry.max_attempts', 12, 1, 1000),
  };
  if (type === 'none') return { type, quitRetry };
  if (type !== 'wukongim') throw new ConfigError('im.type', 'none or wukongim', type);
  const wukongim = object(im.wukongim ?? {}, 'im.wukongim');
  return {
    type,
    wukongim: {
      apiUrl: httpUrl(wukongim.api_url, 'im.wukongim.api_url'),
      managerToken: secret(wukongim.manager_token, 'im.wukongim.manager_token'),
      timeoutMs: int(wukongim.timeout_ms, 'im.wukongim.timeout_ms', 3000, 100, 60_000),
    },
    quitRetry,
  };
}

/** Unknown keys were refused by the schema (schema.ts) before this runs. */
function object(value: unknown, key: string): Json {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(key, 'an object', HIDDEN_VALUE);
  return value as Json;
}

function httpUrl(value: unknown, key: string): string {
  if (typeof value !== 'string') throw new ConfigError(key, 'an http(s) URL', value);
  const shown = withoutUserinfo(value);
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new ConfigError(key, 'an http(s) URL', shown);
  }
  // WuKongIM's API usually listens on a private network in plain http; credentials in the URL would be logged.
  if ((parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.username !== '' || parsed.password !== '') {
    throw new ConfigError(key, 'an http(s) URL without credentials', shown);
  }
  return value;
}

/** The URL as an error may print it: whatever stands before an `@` of the authority may be a password. */
function withoutUserinfo(url: string): string {
  return url.replace(/^([^:/?#]*:\/\/)[^/?#]*@/, '$1***@');
}

/** Never echoed back in an error: the line would end up in logs. */
function secret(value: unknown, key: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '' || value.length > 512) throw new ConfigError(key, 'a non-empty string', '***');
  return value;
}

