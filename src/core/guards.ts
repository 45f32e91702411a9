import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { Kv } from '../ports/kv.ts';
import type { RateLimit } from '../config/config.ts';
import { rateLimited } from './errors.ts';

/** IPv6 clients are counted per /64 unless configured otherwise (`rate_limits.ipv6_prefix`). */
export const DEFAULT_IPV6_PREFIX = 64;

/**
 * Fixed-window counters in the Kv store, so a limit holds across every node. Keys carry a hash of
 * the account identifier, never the identifier itself (no emails or phone numbers in the store).
 */
export class RateLimiter {
  readonly #kv: Kv;
  readonly #ipv6Prefix: number;
  constructor(kv: Kv, ipv6Prefix: number = DEFAULT_IPV6_PREFIX) {
    this.#kv = kv;
    this.#ipv6Prefix = ipv6Prefix;
  }

  /**
   * Counts one request against `name:subject`; throws rate_limited past the limit. A subject that
   * is a client address is counted under its network (clientNetwork), here for every caller.
   */
  async hit(name: string, subject: string, limit: RateLimit): Promise<void> {
    const key = `rl:${name}:${clientNetwork(subject, this.#ipv6Prefix)}`;
    const { value, ttlMs } = await this.#kv.incr(key, limit.windowSeconds * 1000);
    if (value > limit.max) throw rateLimited(retryAfterSeconds(ttlMs, limit.windowSeconds));
  }

  /** The budget a client address counts against: itself, or its IPv6 network (rate_limits.ipv6_prefix). */
  requester(ip: string): string {
    return clientNetwork(ip, this.#ipv6Prefix);
  }
}

export interface LoginThrottleLimits {
  readonly perAccountIp: number;
  readonly perAccount: number;
  readonly windowSeconds: number;
  readonly lockSeconds: number;
  /** The address part of the (account, address) pair is the client's network (clientNetwork). */
  readonly ipv6Prefix?: number;
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
    const pair = await this.#kv.incr(this.#pairKey(account, ip), this.#limits.lockSeconds * 1000);
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
    await this.#kv.del(this.#pairKey(account, ip));
    await this.#giveBack(accountKey(account));
  }

  /** The password was never checked (hashing refused the work): the reserved attempt is returned. */
  async released(subject: ThrottleSubject, ip: string): Promise<void> {
    const account = accountHash(subject);
    await this.#giveBack(this.#pairKey(account, ip));
    await this.#giveBack(accountKey(account));
  }

  #pairKey(account: string, ip: string): string {
    return `lf:{${account}}:${clientNetwork(ip, this.#limits.ipv6Prefix ?? DEFAULT_IPV6_PREFIX)}`;
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
const accountKey = (account: string): string => `lf:{${account}}`;

function retryAfterSeconds(ttlMs: number, fallbackSeconds: number): number {
  return ttlMs > 0 ? Math.max(1, Math.ceil(ttlMs / 1000)) : fallbackSeconds;
}

/**
 * The subject a client address is counted under by every per-address limit. One IPv6 client
 * (a home, a VM) is given a whole /64: counting each of its 2^64 addresses on its own would give it
 * as many budgets, so it counts under its first `ipv6Prefix` bits. A dual-stack socket reports an
 * IPv4 client as ::ffff:a.b.c.d, which is that IPv4 address. Anything that is not an address
 * (a hashed destination) is returned as it is.
 */
export function clientNetwork(subject: string, ipv6Prefix: number): string {
  // isIP() first: it also takes the undefined that request.ip is once the socket has gone.
  if (isIP(subject) !== 6) return subject;
  const address = subject.split('%')[0] ?? subject;
  const groups = ipv6Groups(address);
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    const [high = 0, low = 0] = groups.slice(6);
    return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
  }
  const masked = groups.map((group, index) => group & groupMask(ipv6Prefix - index * 16));
  return `${masked.map((group) => group.toString(16)).join(':')}/${ipv6Prefix}`;
}

/** The mask of one 16-bit group when `bits` of it (clamped to 0..16) belong to the prefix. */
function groupMask(bits: number): number {
  const kept = Math.max(0, Math.min(16, bits));
  return (0xffff << (16 - kept)) & 0xffff;
}

/** The eight 16-bit groups of an address that isIP() accepted as IPv6 (`::` and a dotted tail allowed). */
function ipv6Groups(address: string): number[] {
  const parse = (part: string): number[] => {
    if (part === '') return [];
    return part.split(':').flatMap((group) => {
      if (!group.includes('.')) return [Number.parseInt(group, 16)];
      const [a = 0, b = 0, c = 0, d = 0] = group.split('.').map(Number);
      return [(a << 8) | b, (c << 8) | d];
    });
  };
  const [head = '', tail] = address.split('::');
  const before = parse(head);
  const after = tail === undefined ? [] : parse(tail);
  return [...before, ...Array<number>(8 - before.length - after.length).fill(0), ...after];
}
