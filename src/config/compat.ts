/**
 * The `compat` section: shapes for clients written for octo-server (TangSengDaoDao Web, Android,
 * iOS, octo-web; docs/octo-compat.md). Off by default, and then nothing changes. On, it changes only
 * octo's own routes (login, register, quit, pc/quit, the device id), never a latchkey-only route.
 * `octo_redis` keeps octo-server's own token keys (`token:<t>` → `uid@name@role`) in step with
 * latchkey's sessions, so an unmodified octo-server accepts latchkey's tokens.
 */
import { ConfigError, HIDDEN_VALUE } from './errors.ts';

export interface OctoRedisConfig {
  /** octo-server's Redis (`redis://` or `rediss://`, a DB index in the path). */
  readonly url: string;
  /** octo-server's `cache.tokenCachePrefix`. */
  readonly tokenPrefix: string;
  /** Where latchkey keeps, beside the token keys, which token each of its sessions mirrors. */
  readonly sidPrefix: string;
  /** octo-server's `cache.tokenExpire`; a mirrored key never outlives its session either. */
  readonly tokenTtlSeconds: number;
  /** How often each node retries the removals octo-server's Redis missed; also the first back-off. */
  readonly retryIntervalMs: number;
  /** The back-off doubles up to this; a removal is never given up. */
  readonly retryMaxIntervalMs: number;
}

export interface CompatConfig {
  /** octo-server's request and answer shapes on octo's routes. */
  readonly octo: boolean;
  /** The token mirror into octo-server's Redis; null: none. */
  readonly octoRedis: OctoRedisConfig | null;
  /**
   * The TangSengDaoDao web client's QR login (`qrcode` as a URL string, polling and redeeming
   * without a poll secret, bound by a cookie or the requester's address instead; docs/octo-compat.md §5).
   */
  readonly octoQr: boolean;
}

type Json = Record<string, unknown>;

export function parseCompatConfig(value: unknown): CompatConfig {
  const compat = object(value ?? {}, 'compat');
  const octo = bool(compat.octo, 'compat.octo', false);
  const octoQr = bool(compat.octo_qr, 'compat.octo_qr', false);
  if (octoQr && !octo) throw new ConfigError('compat.octo_qr', 'set only with compat.octo: true', compat.octo_qr);
  if (compat.octo_redis === undefined || compat.octo_redis === null) return { octo, octoRedis: null, octoQr };
  if (!octo) throw new ConfigError('compat.octo_redis', 'set only with compat.octo: true', HIDDEN_VALUE);
  const redis = object(compat.octo_redis, 'compat.octo_redis');
  const url = redis.url;
  // The URL may carry a password: it is never echoed.
  if (typeof url !== 'string' || !/^rediss?:\/\/./.test(url) || !URL.canParse(url)) {
    throw new ConfigError('compat.octo_redis.url', 'a redis:// or rediss:// URL', HIDDEN_VALUE);
  }
  const retryIntervalMs = int(redis.retry_interval_ms, 'compat.octo_redis.retry_interval_ms', 5000, 50, 3_600_000);
  return {
    octo,
    octoQr,
    octoRedis: {
      url,
      tokenPrefix: prefix(redis.token_prefix, 'compat.octo_redis.token_prefix', 'token:'),
      sidPrefix: prefix(redis.sid_prefix, 'compat.octo_redis.sid_prefix', 'latchkey:octo-sid:'),
      tokenTtlSeconds: int(redis.token_ttl_seconds, 'compat.octo_redis.token_ttl_seconds', 30 * 24 * 3600, 60, 10 * 365 * 24 * 3600),
      retryIntervalMs,
      retryMaxIntervalMs: int(redis.retry_max_interval_ms, 'compat.octo_redis.retry_max_interval_ms', Math.max(300_000, retryIntervalMs), retryIntervalMs, 3_600_000),
    },
  };
}

function object(value: unknown, key: string): Json {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(key, 'an object', HIDDEN_VALUE);
  return value as Json;
}

function bool(value: unknown, key: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new ConfigError(key, 'true or false', value);
}

function int(value: unknown, key: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const number = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max) {
    throw new ConfigError(key, `an integer from ${min} to ${max}`, value);
  }
  return number;
}

/** Printable, no spaces; the two prefixes must differ or a session key could read as a token key. */
function prefix(value: unknown, key: string, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !/^[\x21-\x7e]{1,64}$/.test(value)) throw new ConfigError(key, '1 to 64 printable characters, no space', value);
  return value;
}
