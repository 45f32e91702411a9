/**
 * Shared by the storm tests (test/e2e/storm.test.ts, test/scale/cluster-storm.test.ts): a seeded
 * random source, so a run's sequence of operations can be replayed from its seed.
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
