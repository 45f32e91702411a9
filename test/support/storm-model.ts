/**
 * Shared by the storm tests (test/e2e/storm.test.ts, test/scale/cluster-storm.test.ts): a seeded
 * random source, so a run's sequence of operations can be replayed from its seed, and the shapes
 * of their bookkeeping.
 */

/** mulberry32: the op sequence is reproducible from the seed (the interleaving is not). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The device flags the storms log in with: APP is exclusive, Web and PC are multi-session. */
export type Flag = 0 | 1 | 2;
export const APP: Flag = 0;
export const WEB: Flag = 1;
export const PC: Flag = 2;

/** One request as the storm saw it: numbers from the storm's tick counter, and the answer's status. */
export interface Exchange {
  readonly sentAt: number;
  respondedAt: number;
  status: number;
}

/** An APP login: it may replace the user's APP session. */
export interface AppLogin extends Exchange {
  sid: string | null;
}

export interface RevokeOthers extends Exchange {
  readonly keepSid: string;
}

/** What the contract says of a session once everything settled. */
export type Verdict = 'ended' | 'live' | 'unknown';
