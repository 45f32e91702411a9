/**
 * The `metrics` section of the config: where Prometheus scrapes `GET /metrics`. Metrics tell how
 * busy each flow is, which is nobody's business outside the operator's network, so by default they
 * are served only on a listener of their own on the loopback address, never on the public API port.
 */
import { ConfigError } from './errors.ts';

export interface MetricsConfig {
  /** The metrics-only listener; null turns it off. Port 0 picks any free port (tests). */
  readonly listener: { readonly host: string; readonly port: number } | null;
  /** With a key, the API listener also answers `/metrics` to `Authorization: Bearer <key>`; else 404 there. */
  readonly bearerKey: string | undefined;
}

/** 9464: the port the OpenTelemetry Prometheus exporter uses, so scrape configs often expect it. */
export const DEFAULT_METRICS_PORT = 9464;
/** A shorter key can be guessed over the network, and every guess is a cheap GET. */
const MIN_BEARER_KEY_LENGTH = 32;

/** `LATCHKEY_METRICS_HOST`, `_PORT` (`off` for no listener) and `_BEARER_KEY` override the file's `metrics`. */
export function metricsFromEnv(fromFile: unknown, env: Readonly<Record<string, string | undefined>>): unknown {
  const given = { HOST: 'host', PORT: 'port', BEARER_KEY: 'bearer_key' } as const;
  const overrides = Object.entries(given).filter(([name]) => (env[`LATCHKEY_METRICS_${name}`] ?? '') !== '');
  if (overrides.length === 0) return fromFile;
  const base = fromFile !== null && typeof fromFile === 'object' && !Array.isArray(fromFile) ? fromFile : {};
  return { ...base, ...Object.fromEntries(overrides.map(([name, key]) => [key, env[`LATCHKEY_METRICS_${name}`]])) };
}

export function parseMetricsConfig(value: unknown): MetricsConfig {
  const metrics = value ?? {};
  if (metrics === null || typeof metrics !== 'object' || Array.isArray(metrics)) throw new ConfigError('metrics', 'an object', value);
  const raw = metrics as Record<string, unknown>;
  const port = listenerPort(raw.port);
  return {
    listener: port === null ? null : { host: listenerHost(raw.host), port },
    bearerKey: bearerKey(raw.bearer_key),
  };
}

function listenerPort(value: unknown): number | null {
  if (value === undefined) return DEFAULT_METRICS_PORT;
  if (value === null || value === false || value === 'off') return null;
  const number = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < 0 || number > 65535) {
    throw new ConfigError('metrics.port', 'an integer from 0 to 65535, or null / "off" for no metrics listener', value);
  }
  return number;
}

function listenerHost(value: unknown): string {
  if (value === undefined) return '127.0.0.1';
  if (typeof value !== 'string' || value === '') throw new ConfigError('metrics.host', 'a non-empty string', value);
  return value;
}

function bearerKey(value: unknown): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || value.length < MIN_BEARER_KEY_LENGTH || value.length > 512) {
    // Never echoed: the key is a secret and this line ends up in logs.
    throw new ConfigError('metrics.bearer_key', `a key of ${MIN_BEARER_KEY_LENGTH} to 512 characters`, '***');
  }
  return value;
}
