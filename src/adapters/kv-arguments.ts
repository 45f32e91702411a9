/**
 * Argument rules shared by every Kv adapter, so memory and SQLite reject exactly what Redis rejects
 * (and Redis fails before a round trip instead of with a syntax error).
 */
import type { SetOptions } from '../ports/kv.ts';

/** Redis refuses PX 0, negative and fractional TTLs; so does every adapter. */
export function checkTtl(ttlMs: number): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new RangeError(`ttlMs must be a positive integer, got ${ttlMs}`);
  }
}

export function checkSetOptions(options: SetOptions): void {
  if (options.nx && options.xx) throw new RangeError('set: nx and xx are mutually exclusive');
  if (options.keepTtl && options.ttlMs !== undefined) {
    throw new RangeError('set: keepTtl and ttlMs are mutually exclusive');
  }
  if (options.ttlMs !== undefined) checkTtl(options.ttlMs);
}

/** INCR accepts only a canonical integer (what Redis' string2ll accepts, within JS' safe range). */
export function parseCounter(value: string): number {
  const n = Number(value);
  if (!/^(0|-?[1-9][0-9]*)$/.test(value) || !Number.isSafeInteger(n + 1)) {
    throw new RangeError('incr: the value is not an integer or out of range');
  }
  return n;
}
