/**
 * The `webhooks` list: where events are POSTed (docs/api.md §13, docs/design.md §3.6). Each
 * entry's secret is a Standard Webhooks key (`whsec_<base64>`, at least 24 bytes); it is never shown
 * in an error. A URL must be https, except on a loopback host (a receiver on the same machine, tests).
 */
import { createHash } from 'node:crypto';
import { EVENT_TYPES, type EventType } from '../ports/events.ts';
import { ConfigError, HIDDEN_VALUE } from './errors.ts';
import { int as integer } from './values.ts';
import { isLoopback } from './oidc.ts';

export interface WebhookTarget {
  /** Stable across restarts and nodes: names the target's rows in the outbox (a hash of the URL). */
  readonly key: string;
  readonly url: string;
  readonly secret: string;
  /** The event types sent; null: every type (`["*"]`). */
  readonly events: ReadonlySet<EventType> | null;
  readonly maxAgeSeconds: number;
  readonly timeoutMs: number;
  /** The longest wait between two attempts (the backoff doubles from one second up to this). */
  readonly retryMaxMs: number;
}

export function parseWebhooksConfig(value: unknown): readonly WebhookTarget[] {
  const list = value ?? [];
  if (!Array.isArray(list)) throw new ConfigError('webhooks', 'a list of {url, secret, events}', HIDDEN_VALUE);
  const targets = list.map((entry, i) => parseTarget(entry, `webhooks[${i}]`));
  if (new Set(targets.map((t) => t.url)).size !== targets.length) throw new ConfigError('webhooks', 'a list of distinct URLs', HIDDEN_VALUE);
  return targets;
}

function parseTarget(value: unknown, at: string): WebhookTarget {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(at, 'an object {url, secret, events}', HIDDEN_VALUE);
  const raw = value as Record<string, unknown>;
  const url = targetUrl(raw.url, `${at}.url`);
  return {
    key: createHash('sha256').update(url).digest('hex').slice(0, 16),
    url,
    secret: secret(raw.secret, `${at}.secret`),
    events: eventTypes(raw.events, `${at}.events`),
    maxAgeSeconds: integer(raw.max_age_seconds, `${at}.max_age_seconds`, 86_400, 1, 30 * 86_400),
    timeoutMs: integer(raw.timeout_ms, `${at}.timeout_ms`, 5000, 100, 60_000),
    retryMaxMs: integer(raw.retry_max_ms, `${at}.retry_max_ms`, 300_000, 1000, 86_400_000),
  };
}

function targetUrl(value: unknown, key: string): string {
  const expected = 'an https URL (http only for a loopback host)';
  if (typeof value !== 'string' || !URL.canParse(value)) throw new ConfigError(key, expected, value);
  const parsed = new URL(value);
  const httpOk = parsed.protocol === 'http:' && isLoopback(parsed.hostname);
  if ((parsed.protocol !== 'https:' && !httpOk) || parsed.username !== '' || parsed.password !== '') {
    throw new ConfigError(key, `${expected}, without user:password@`, value);
  }
  return value;
}

/** `whsec_` and base64 of 24 to 64 bytes, as the Standard Webhooks libraries generate them. */
function secret(value: unknown, key: string): string {
  const match = typeof value === 'string' ? /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(value) : null;
  const bytes = match?.[1] === undefined ? 0 : Buffer.from(match[1], 'base64').length;
  if (bytes < 24 || bytes > 64) throw new ConfigError(key, 'whsec_ followed by the base64 of 24 to 64 random bytes', HIDDEN_VALUE);
  return value as string;
}

function eventTypes(value: unknown, key: string): ReadonlySet<EventType> | null {
  const expected = `["*"] or a non-empty list of ${EVENT_TYPES.join(', ')}`;
  const list = typeof value === 'string' ? value.split(',').map((v) => v.trim()) : value;
  if (!Array.isArray(list) || list.length === 0) throw new ConfigError(key, expected, value);
  if (list.includes('*')) {
    if (list.length !== 1) throw new ConfigError(key, expected, value);
    return null;
  }
  const bad = list.find((type) => !(EVENT_TYPES as readonly unknown[]).includes(type));
  if (bad !== undefined) throw new ConfigError(key, expected, bad);
  return new Set(list as EventType[]);
}

