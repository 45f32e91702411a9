/**
 * One-time codes in the Kv store: issue, verify-and-consume, withdraw (docs/design.md §4).
 *
 * `code:<purpose>:<destination id>` holds `{c: [{n: nonce, h: hash, x: expires at}], t: wrong tries}`:
 * the destination's live codes (at most MAX_LIVE_CODES, newest last) and ONE try counter for them
 * all, with the key's TTL at the newest code's expiry. Every change is a compare-and-set or
 * compare-and-delete against the exact value that was checked. That closes the races octo-server
 * had (docs/octo-server.md §7, §8.19):
 *  - GET-then-DEL let one code succeed twice under concurrency: here a right guess must win
 *    compareAndDelete of the value it verified, and only one caller can.
 *  - a separate failure counter can be outrun (50 guesses read the code before any counted):
 *    here a wrong guess only gets its answer once its increment landed on the value it compared
 *    against, so at most five wrong answers are ever given per record; the fifth deletes it.
 *
 * Why several live codes (docs/security.md §2, item 7): a new send used to replace the code in the owner's
 * inbox, so a stranger sending codes to your address made the one you were typing useless. A send
 * now adds a code and keeps the newer earlier ones; it adds no tries, so more codes never buy more
 * guesses: the record allows five wrong guesses in all until it is used, burnt or expired.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Kv } from '../../ports/kv.ts';
import type { Clock } from '../../ports/clock.ts';
import type { Random } from '../../ports/random.ts';
import type { CodePurpose } from '../../ports/sender.ts';
import { LatchkeyError } from '../../core/errors.ts';
import { destinationId, type Destination } from '../../core/destinations.ts';

export const CODE_TTL_MS = 5 * 60_000;
export const MAX_WRONG_GUESSES = 5;
/**
 * Codes of one destination and purpose usable at once. Each was a send the limits allowed, so a
 * guess against three codes costs an attacker three sends: guesses per send stay at five.
 */
export const MAX_LIVE_CODES = 3;
const CODE_SPACE = 1_000_000;
/**
 * A value changes at most MAX_WRONG_GUESSES + 1 times before it is gone, plus once per send (bounded
 * by the send limits), and every failed compare means one of those changes happened: the loop ends.
 */
const MAX_ROUNDS = 8 * (MAX_WRONG_GUESSES + 1);

interface LiveCode {
  /** Random per code: each issued value is unique, so a compare never mistakes one code for another. */
  readonly n: string;
  readonly h: string;
  /** Expires at (Clock ms): each code keeps its own five minutes, whatever was sent after it. */
  readonly x: number;
}

interface CodeRecord {
  readonly c: readonly LiveCode[];
  readonly t: number;
}

/** `wrong` includes the guess that burnt the codes; `missing` is expired, used, burnt or never sent. */
export type Verdict = 'ok' | 'wrong' | 'missing';

export interface IssuedCode {
  readonly code: string;
  /** This code's nonce, to withdraw exactly this code (and no other) if it cannot be delivered. */
  readonly nonce: string;
}

export class CodeStore {
  readonly #kv: Kv;
  readonly #clock: Clock;
  readonly #random: Random;

  constructor(kv: Kv, clock: Clock, random: Random) {
    this.#kv = kv;
    this.#clock = clock;
    this.#random = random;
  }

  /**
   * Adds a fresh 6-digit code to the destination's live codes (the oldest beyond MAX_LIVE_CODES
   * drops out). The try count carries over while earlier codes live: a resend never resets it.
   */
  async issue(purpose: CodePurpose, destination: Destination): Promise<IssuedCode> {
    const code = String(this.#random.int(0, CODE_SPACE)).padStart(6, '0');
    const nonce = this.#random.bytes(16).toString('base64url');
    const fresh: LiveCode = { n: nonce, h: codeHash(nonce, purpose, destination, code), x: this.#clock.now() + CODE_TTL_MS };
    const key = codeKey(purpose, destination);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const stored = await this.#kv.get(key);
      const earlier = stored === null ? null : this.#live(parseRecord(stored));
      const next: CodeRecord = { c: [...(earlier?.c ?? []), fresh].slice(-MAX_LIVE_CODES), t: earlier?.t ?? 0 };
      const value = JSON.stringify(next);
      const written = stored === null
        ? await this.#kv.set(key, value, { nx: true, ttlMs: CODE_TTL_MS })
        : await this.#kv.compareAndSet(key, stored, value, { ttlMs: CODE_TTL_MS });
      if (written) return { code, nonce };
    }
    throw new LatchkeyError('upstream_unavailable', 'the code could not be stored; try again shortly');
  }

  /** Removes this code, and not another, when its delivery failed, so it can never be used. */
  async withdraw(purpose: CodePurpose, destination: Destination, nonce: string): Promise<void> {
    const key = codeKey(purpose, destination);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const stored = await this.#kv.get(key);
      if (stored === null) return;
      const record = parseRecord(stored);
      const rest = record?.c.filter((code) => code.n !== nonce) ?? [];
      if (record !== null && rest.length === record.c.length) return;
      const changed = rest.length === 0 || record === null
        ? await this.#kv.compareAndDelete(key, stored)
        : await this.#kv.compareAndSet(key, stored, JSON.stringify({ ...record, c: rest }), { keepTtl: true });
      if (changed) return;
    }
  }

  async attempt(purpose: CodePurpose, destination: Destination, guess: string): Promise<Verdict> {
    const key = codeKey(purpose, destination);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const stored = await this.#kv.get(key);
      if (stored === null) return 'missing';
      const record = this.#live(parseRecord(stored));
      if (record === null) {
        await this.#kv.compareAndDelete(key, stored);
        return 'missing';
      }
      if (record.c.some((code) => matches(code, purpose, destination, guess))) {
        // A used code takes the others with it: the owner is in, and spare codes are only risk.
        if (await this.#kv.compareAndDelete(key, stored)) return 'ok';
        continue; // someone changed it first (a wrong guess counted, a winner consumed, a send): look again
      }
      const tries = record.t + 1;
      const counted = tries >= MAX_WRONG_GUESSES
        ? await this.#kv.compareAndDelete(key, stored)
        : await this.#kv.compareAndSet(key, stored, JSON.stringify({ ...record, t: tries }), { keepTtl: true });
      if (counted) return 'wrong';
    }
    // Fail closed. The answer is the same whether or not the guess matched, so it teaches nothing.
    return 'wrong';
  }

  /** The record without its expired codes; null when none is left (or it was unreadable). */
  #live(record: CodeRecord | null): CodeRecord | null {
    const now = this.#clock.now();
    const live = record?.c.filter((code) => code.x > now) ?? [];
    return record === null || live.length === 0 ? null : { c: live, t: record.t };
  }
}

export function codeKey(purpose: CodePurpose, destination: Destination): string {
  return `code:${purpose}:${destinationId(destination)}`;
}

/**
 * HMAC keyed by the per-code nonce, over purpose + destination + code: a stored value copied to
 * another destination or purpose never verifies. The keyspace is only 10^6, so anyone holding a store
 * dump can still brute-force a code offline in milliseconds: hashing keeps codes out of plain sight,
 * while the real protection is the five-try burn and the five-minute TTL.
 */
function codeHash(nonce: string, purpose: CodePurpose, destination: Destination, code: string): string {
  return createHmac('sha256', nonce)
    .update(`latchkey-code-v1\0${purpose}\0${destination.channel}:${destination.to}\0${code}`)
    .digest('base64url');
}

function matches(live: LiveCode, purpose: CodePurpose, destination: Destination, guess: string): boolean {
  const expected = Buffer.from(live.h, 'base64url');
  const actual = Buffer.from(codeHash(live.n, purpose, destination, guess), 'base64url');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

function parseRecord(stored: string): CodeRecord | null {
  try {
    const value = JSON.parse(stored) as { c?: unknown; t?: unknown };
    if (Array.isArray(value.c) && typeof value.t === 'number' && value.c.every(isLiveCode)) return { c: value.c, t: value.t };
  } catch {
    // a corrupt value is treated as no code
  }
  return null;
}

function isLiveCode(value: unknown): value is LiveCode {
  if (value === null || typeof value !== 'object') return false;
  const code = value as Partial<LiveCode>;
  return typeof code.n === 'string' && typeof code.h === 'string' && typeof code.x === 'number';
}
