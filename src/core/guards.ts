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

  /** Before any password work: refuses a locked (account, address) pair, delays a hot account. */
  async before(identifier: string, ip: string): Promise<void> {
    const account = accountHash(identifier);
    const [pairCount, pairTtl] = await this.#count(pairKey(account, ip));
    if (pairCount >= this.#limits.perAccountIp) {
      throw rateLimited(retryAfterSeconds(pairTtl, this.#limits.lockSeconds));
    }
    const [accountCount] = await this.#count(accountKey(account));
    const over = accountCount - this.#limits.perAccount;
    if (over >= 0) await this.#delay(Math.min(MAX_ACCOUNT_DELAY_MS, 250 * 2 ** Math.min(over, 10)));
  }

  async failed(identifier: string, ip: string): Promise<void> {
    const account = accountHash(identifier);
    await this.#kv.incr(pairKey(account, ip), this.#limits.lockSeconds * 1000);
    await this.#kv.incr(accountKey(account), this.#limits.windowSeconds * 1000);
  }

  /** A success clears this address's failures on the account (not the account-wide count). */
  async succeeded(identifier: string, ip: string): Promise<void> {
    await this.#kv.del(pairKey(accountHash(identifier), ip));
  }

  async #count(key: string): Promise<[number, number]> {
    const [value, ttl] = await Promise.all([this.#kv.get(key), this.#kv.pttl(key)]);
    return [value === null ? 0 : Number(value), ttl ?? 0];
  }
}

function accountHash(identifier: string): string {
  return createHash('sha256').update(identifier.normalize('NFC').toLowerCase()).digest('base64url').slice(0, 22);
}
const pairKey = (account: string, ip: string): string => `lf:{${account}}:${ip}`;
const accountKey = (account: string): string => `lf:{${account}}`;

function retryAfterSeconds(ttlMs: number, fallbackSeconds: number): number {
  return ttlMs > 0 ? Math.max(1, Math.ceil(ttlMs / 1000)) : fallbackSeconds;
}
