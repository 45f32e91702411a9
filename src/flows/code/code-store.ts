/**
 * One-time codes in the Kv store: issue, verify-and-consume, withdraw (DESIGN §4).
 *
 * `code:<purpose>:<destination id>` holds `{n: nonce, h: hash, t: wrong tries}` with a 5-minute TTL.
 * The try counter lives in the SAME value as the hash, and every change is a compare-and-set or
 * compare-and-delete against the exact value that was checked. That closes the two races octo-server
 * had (research spec §6.5, §7 item 19):
 *  - GET-then-DEL let one code succeed twice under concurrency: here a right guess must win
 *    compareAndDelete of the value it verified, and only one caller can.
 *  - a separate failure counter can be outrun (50 guesses read the code before any counted):
 *    here a wrong guess only gets its answer once its increment landed on the value it compared
 *    against, so at most five wrong answers are ever given per code; the fifth deletes it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Kv } from '../../ports/kv.ts';
import type { Random } from '../../ports/random.ts';
import type { CodePurpose } from '../../ports/sender.ts';
import { destinationId, type Destination } from '../../core/destinations.ts';

export const CODE_TTL_MS = 5 * 60_000;
export const MAX_WRONG_GUESSES = 5;
const CODE_SPACE = 1_000_000;
/**
 * A value changes at most MAX_WRONG_GUESSES + 1 times before it is gone (plus a resend, at most one
 * a minute), and every failed compare means one of those changes happened: the retry loop ends.
 */
const MAX_ROUNDS = 4 * (MAX_WRONG_GUESSES + 1);

interface CodeRecord {
  /** Random per code: each issued value is unique, so a compare never mistakes a resent code for the old one. */
  readonly n: string;
  readonly h: string;
  readonly t: number;
}

/** `wrong` includes the guess that burnt the code; `missing` is expired, used, burnt or never sent. */
export type Verdict = 'ok' | 'wrong' | 'missing';

export interface IssuedCode {
  readonly code: string;
  /** The stored value, to withdraw exactly this code if it cannot be delivered. */
  readonly stored: string;
}

export class CodeStore {
  readonly #kv: Kv;
  readonly #random: Random;

  constructor(kv: Kv, random: Random) {
    this.#kv = kv;
    this.#random = random;
  }

  /**
   * A fresh 6-digit code replaces any earlier one for this purpose and destination, with a fresh
   * try budget; how often that can happen is bounded by the resend cooldown and send limits.
   */
  async issue(purpose: CodePurpose, destination: Destination): Promise<IssuedCode> {
    const code = String(this.#random.int(0, CODE_SPACE)).padStart(6, '0');
    const nonce = this.#random.bytes(16).toString('base64url');
    const record: CodeRecord = { n: nonce, h: codeHash(nonce, purpose, destination, code), t: 0 };
    const stored = JSON.stringify(record);
    await this.#kv.set(codeKey(purpose, destination), stored, { ttlMs: CODE_TTL_MS });
    return { code, stored };
  }

  /** Removes this code (and not a newer one) when its delivery failed, so it can never be used. */
  async withdraw(purpose: CodePurpose, destination: Destination, stored: string): Promise<void> {
    await this.#kv.compareAndDelete(codeKey(purpose, destination), stored);
  }

  async attempt(purpose: CodePurpose, destination: Destination, guess: string): Promise<Verdict> {
    const key = codeKey(purpose, destination);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const stored = await this.#kv.get(key);
      if (stored === null) return 'missing';
      const record = parseRecord(stored);
      if (record === null) {
        await this.#kv.compareAndDelete(key, stored);
        return 'missing';
      }
      if (matches(record, purpose, destination, guess)) {
        if (await this.#kv.compareAndDelete(key, stored)) return 'ok';
        continue; // someone changed it first (a wrong guess counted, a winner consumed): look again
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

function matches(record: CodeRecord, purpose: CodePurpose, destination: Destination, guess: string): boolean {
  const expected = Buffer.from(record.h, 'base64url');
  const actual = Buffer.from(codeHash(record.n, purpose, destination, guess), 'base64url');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

function parseRecord(stored: string): CodeRecord | null {
  try {
    const value = JSON.parse(stored) as Partial<CodeRecord>;
    if (typeof value.n === 'string' && typeof value.h === 'string' && typeof value.t === 'number') {
      return { n: value.n, h: value.h, t: value.t };
    }
  } catch {
    // a corrupt value is treated as no code
  }
  return null;
}
