import { createHash } from 'node:crypto';
import type { Kv } from '../ports/kv.ts';
import type { RateLimit } from '../config.ts';
import { rateLimited } from './errors.ts';

/**
 * Fixed-window counters in the Kv store, so a limit holds across every node. Keys carry a hash of
 * the account identifier, never the identifier itself (no emails or phone numbers in the store).
 */
export class RateLimiter {
  readonly #kv: Kv;
  constructor(kv: Kv) {
    this.#kv = kv;
  }

  /** Counts one request against `name:subject`; throws rate_limited past the limit. */
  async hit(name: string, subject: string, limit: RateLimit): Promise<void> {
    const { value, ttlMs } = await this.#kv.incr(`rl:${name}:${subject}`, limit.windowSeconds * 1000);
    if (value > limit.max) throw rateLimited(retryAfterSeconds(ttlMs, limit.windowSeconds));
  }
}

export interface LoginThrottleLimits {
  readonly perAccountIp: number;
  readonly perAccount: number;
  readonly windowSeconds: number;
  readonly lockSeconds: number;
}

/** Waits this long; injectable so tests need not sleep. */
export type Delay = (ms: number) => Promise<void>;
const realDelay: Delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const MAX_ACCOUNT_DELAY_MS = 4_000;

/**
 * Failed-login throttling keyed by account AND address: one address that keeps guessing is locked
 * out of that account, while the owner at another address is not. Failures across all addresses
 * only slow every attempt on the account down (growing delays), so an attacker spread over many
 * addresses is slowed but can never lock the owner out.
 *
 * An attempt is reserved (INCR) before the password is hashed, and given back when the password was
 * right: a counter read first and raised after the check let 40 parallel guesses through a limit of
 * 5, since all of them read the count before any of them raised it.
 */
export class LoginThrottle {
  readonly #kv: Kv;
  readonly #limits: LoginThrottleLimits;
  readonly #delay: Delay;

  constructor(kv: Kv, limits: LoginThrottleLimits, delay: Delay = realDelay) {
    this.#kv = kv;
    this.#limits = limits;
    this.#delay = delay;
  }

  /**
   * Before any password work: counts this attempt, refuses it past the (account, address) limit,
   * and delays it when the account as a whole is under attack.
   */
  async reserve(subject: ThrottleSubject, ip: string): Promise<void> {
    const account = accountHash(subject);
    const pair = await this.#kv.incr(pairKey(account, ip), this.#limits.lockSeconds * 1000);
    if (pair.value > this.#limits.perAccountIp) {
      throw rateLimited(retryAfterSeconds(pair.ttlMs, this.#limits.lockSeconds));
    }
    const { value } = await this.#kv.incr(accountKey(account), this.#limits.windowSeconds * 1000);
    const over = value - 1 - this.#limits.perAccount;
    if (over >= 0) await this.#delay(Math.min(MAX_ACCOUNT_DELAY_MS, 250 * 2 ** Math.min(over, 10)));
  }

  /** A right password clears this address's failures and is not counted against the account. */
  async succeeded(subject: ThrottleSubject, ip: string): Promise<void> {
    const account = accountHash(subject);
    await this.#kv.del(pairKey(account, ip));
    await this.#giveBack(accountKey(account));
  }

  /** The password was never checked (hashing refused the work): the reserved attempt is returned. */
  async released(subject: ThrottleSubject, ip: string): Promise<void> {
    const account = accountHash(subject);
    await this.#giveBack(pairKey(account, ip));
    await this.#giveBack(accountKey(account));
  }

  /**
   * Decrements by compare-and-set (the Kv port has no DECR), keeping the window's TTL. Losing the
   * race a few times in a row only leaves one attempt counted too many: the safe side.
   */
  async #giveBack(key: string): Promise<void> {
    for (let tries = 0; tries < 3; tries += 1) {
      const current = Number((await this.#kv.get(key)) ?? 0);
      if (!(current > 0)) return;
      if (await this.#kv.compareAndSet(key, String(current), String(current - 1), { keepTtl: true })) return;
    }
  }
}

/**
 * Whose budget a password check spends: the account's, whichever spelling (username, email,
 * zone-phone) found it; for an identifier that finds no account, the identifier as normalised, so
 * unknown names are throttled exactly like known ones and the throttle tells nothing apart.
 */
export type ThrottleSubject = { readonly uid: string } | { readonly unknown: string };

export const accountSubject = (uid: string): ThrottleSubject => ({ uid });
export const unknownSubject = (identifier: string): ThrottleSubject => ({ unknown: identifier.normalize('NFKC').toLowerCase() });

function accountHash(subject: ThrottleSubject): string {
  const name = 'uid' in subject ? `uid:${subject.uid}` : `name:${subject.unknown}`;
  return createHash('sha256').update(name).digest('base64url').slice(0, 22);
}
const pairKey = (account: string, ip: string): string => `lf:{${account}}:${ip}`;
const accountKey = (account: string): string => `lf:{${account}}`;

function retryAfterSeconds(ttlMs: number, fallbackSeconds: number): number {
  return ttlMs > 0 ? Math.max(1, Math.ceil(ttlMs / 1000)) : fallbackSeconds;
}
