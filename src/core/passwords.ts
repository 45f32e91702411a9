/**
 * What core decides about passwords: the policy a new password meets, and how many password checks
 * may wait for a hashing thread (the threads and algorithms: adapters/passwords/).
 */
import { busy } from './errors.ts';
import { blockedPasswordReason } from './password-blocklist.ts';
import type { PasswordHasher } from '../ports/password-hasher.ts';

/**
 * Calls that may wait for a hashing thread: 64 per thread, about one second of waiting at the
 * OWASP parameters (one hash takes a core for ~17 ms).
 */
export const defaultHashQueue = (concurrency: number): number => concurrency * 64;

/** Seconds a refused caller is told to wait: a full queue drains in about one. */
const BUSY_RETRY_AFTER_SECONDS = 1;

/**
 * The hasher, admitting at most `admissible` calls at once (running and waiting). Without a bound,
 * 200 password checks in flight (one stolen session, or a burst of logins) made every other login
 * wait behind them; past the bound a caller is told to come back at once (503 upstream_unavailable
 * with Retry-After).
 */
export function boundedHasher(inner: PasswordHasher, admissible: number): PasswordHasher {
  let admitted = 0;
  const bounded = <A extends unknown[], R>(work: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
    if (admitted >= admissible) throw busy('password hashing', BUSY_RETRY_AFTER_SECONDS);
    admitted += 1;
    try {
      return await work(...args);
    } finally {
      admitted -= 1;
    }
  };
  return {
    hash: bounded((password: string) => inner.hash(password)),
    verify: bounded((hash: string | null, password: string) => inner.verify(hash, password)),
    wrapLegacyMd5: bounded((md5Hex: string) => inner.wrapLegacyMd5(md5Hex)),
    load: () => inner.load(),
    close: () => inner.close(),
  };
}

export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 128;

/**
 * Returns null when the password is acceptable, else a message for the user. Lengths count code
 * points; `context` holds the account's own words (username, name, email), which a password must
 * not be built on (password-blocklist.ts).
 */
export function checkPasswordPolicy(password: string, context: readonly string[] = []): string | null {
  // Each code point is at most two UTF-16 units: a longer string is too long without counting it.
  const length = password.length > PASSWORD_MAX_LENGTH * 2 ? Infinity : [...password].length;
  if (length < PASSWORD_MIN_LENGTH) return `password must be at least ${PASSWORD_MIN_LENGTH} characters`;
  if (length > PASSWORD_MAX_LENGTH) return `password must be at most ${PASSWORD_MAX_LENGTH} characters`;
  if (password.trim() === '') return 'password must not be only spaces';
  return blockedPasswordReason(password, PASSWORD_MIN_LENGTH, context);
}
