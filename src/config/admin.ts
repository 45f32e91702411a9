/**
 * The `service_keys` and `audit` sections of the config: the keys other backends present at
 * `POST /v1/auth/verify`, and how long the audit trail is kept. Validated at start.
 */
import { ConfigError } from './errors.ts';

export interface AuditConfig {
  /** Audit events older than this are pruned (by every node, idempotently). */
  readonly retentionDays: number;
}

/** Shorter keys can be guessed; the verify route would become a token oracle (docs/octo-server.md §8.9). */
const MIN_SERVICE_KEY_LENGTH = 32;

/** A list of keys (or one comma-separated string, for LATCHKEY_SERVICE_KEYS); empty turns verify off. */
export function parseServiceKeys(value: unknown): readonly string[] {
  if (value === undefined || value === '') return [];
  const keys = typeof value === 'string' ? value.split(',').map((key) => key.trim()) : value;
  if (!Array.isArray(keys) || !keys.every((key): key is string => typeof key === 'string' && key.length >= MIN_SERVICE_KEY_LENGTH && key.length <= 512)) {
    // Never echoed: the keys are secrets and this line ends up in logs.
    throw new ConfigError('service_keys', `a list of keys of ${MIN_SERVICE_KEY_LENGTH} to 512 characters`, '***');
  }
  return keys;
}

export function parseAuditConfig(value: unknown): AuditConfig {
  const audit = value ?? {};
  if (audit === null || typeof audit !== 'object' || Array.isArray(audit)) throw new ConfigError('audit', 'an object', value);
  const days = (audit as Record<string, unknown>).retention_days ?? 90;
  const number = typeof days === 'string' && /^\d+$/.test(days) ? Number(days) : days;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < 1 || number > 36_500) {
    throw new ConfigError('audit.retention_days', 'an integer from 1 to 36500', days);
  }
  return { retentionDays: number };
}
