/**
 * The typed readers every config section shares. Numbers and switches may come as text (an
 * environment variable is text); the value is checked after that, and refused with its key named.
 */
import { ConfigError } from './errors.ts';

/** An integer from `min` to `max` (a number, or digits as text); `fallback` when absent. */
export function int(value: unknown, key: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const number = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max) {
    throw new ConfigError(key, `an integer from ${min} to ${max}`, value);
  }
  return number;
}

/** true or false (or the same as text); `fallback` when absent. */
export function bool(value: unknown, key: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new ConfigError(key, 'true or false', value);
}
