/**
 * `session_limits`: `[{flags: [0, 1], max: 1, on_exceed: "evict_oldest" | "reject_new"}]`, limits
 * on the live sessions of a group of device flags, on top of `device_policies` (docs/design.md
 * §3.2, invariant 7; docs/api.md §3 for the 409 of `reject_new`).
 */
import { isDeviceFlag, type DeviceFlag, type SessionLimit } from '../core/sessions/policy.ts';
import { ConfigError } from './errors.ts';

const ON_EXCEED: readonly SessionLimit['onExceed'][] = ['evict_oldest', 'reject_new'];
export const MAX_SESSION_LIMIT = 1000;

export function parseSessionLimits(value: unknown): readonly SessionLimit[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new ConfigError('session_limits', 'a list of {flags, max, on_exceed}', value);
  const limits = value.map((item: unknown, i) => parseLimit(item, `session_limits[${i}]`));
  // Two limits on the same flags would share one group slot (keys.ts limitSlotKey), and the smaller
  // max would decide anyway.
  const seen = new Map<string, number>();
  limits.forEach((limit, i) => {
    const flags = [...limit.flags].sort((a, b) => a - b).join(',');
    const earlier = seen.get(flags);
    if (earlier !== undefined) throw new ConfigError(`session_limits[${i}].flags`, `flags no other limit has (session_limits[${earlier}] has them)`, limit.flags);
    seen.set(flags, i);
  });
  return limits;
}

function parseLimit(item: unknown, key: string): SessionLimit {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) throw new ConfigError(key, 'an object {flags, max, on_exceed}', item);
  const { flags, max, on_exceed: onExceed } = item as Record<string, unknown>;
  return { flags: parseFlags(flags, `${key}.flags`), max: parseMax(max, `${key}.max`), onExceed: parseOnExceed(onExceed, `${key}.on_exceed`) };
}

function parseFlags(value: unknown, key: string): DeviceFlag[] {
  const expected = 'a non-empty list of distinct device flags 0 (APP), 1 (Web), 2 (PC)';
  if (!Array.isArray(value) || value.length === 0) throw new ConfigError(key, expected, value);
  const flags = value.map((flag: unknown) => (typeof flag === 'string' && /^\d$/.test(flag.trim()) ? Number(flag) : flag));
  if (!flags.every(isDeviceFlag) || new Set(flags).size !== flags.length) throw new ConfigError(key, expected, value);
  return flags;
}

function parseMax(value: unknown, key: string): number {
  const number = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < 1 || number > MAX_SESSION_LIMIT) {
    throw new ConfigError(key, `an integer from 1 to ${MAX_SESSION_LIMIT}`, value);
  }
  return number;
}

function parseOnExceed(value: unknown, key: string): SessionLimit['onExceed'] {
  if (!ON_EXCEED.includes(value as SessionLimit['onExceed'])) throw new ConfigError(key, `one of ${ON_EXCEED.join(', ')}`, value);
  return value as SessionLimit['onExceed'];
}
