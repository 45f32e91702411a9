/**
 * Kv.get, batched per turn of the event loop: the reads of every request that arrives in one turn
 * go to the store as one multi-key read (Redis MGET, one SQLite SELECT … IN), sent as soon as the
 * turn's I/O callbacks have run. The validation of every authenticated request is one such read.
 *
 * It is no cache: each call reads the store after it was made and before it resolves, so a read
 * never sees a state older than its call (docs/design.md §3.2, invariants 1 and 6); results are never kept
 * past the batch that read them.
 *
 * Why: one read per request cost more than the rest of the request. On Redis, ioredis'
 * auto-pipelining queued each turn's GETs behind the pipeline in flight, one Command each, and
 * under load they lived long enough to be promoted to the old generation (10–20 ms scavenges, a
 * doubled p99); on SQLite, each statement ran on CPU caches the HTTP stack had just evicted.
 * What it gained is in bench/README.md.
 */

/** Reads several keys at once: one value (or null) per key, in the order of `keys`. */
export type ReadMany = (keys: readonly string[]) => Promise<readonly (string | null)[]> | readonly (string | null)[];

interface Waiting {
  readonly key: string;
  readonly resolve: (value: string | null) => void;
  readonly reject: (error: unknown) => void;
}

export class ReadBatch {
  readonly #readMany: ReadMany;
  #waiting: Waiting[] = [];

  constructor(readMany: ReadMany) {
    this.#readMany = readMany;
  }

  get(key: string): Promise<string | null> {
    return new Promise((resolve, reject) => {
      // setImmediate runs after the poll phase, once every request read in this turn has asked.
      if (this.#waiting.push({ key, resolve, reject }) === 1) setImmediate(this.#flush);
    });
  }

  readonly #flush = (): void => {
    const batch = this.#waiting;
    this.#waiting = [];
    const rejectAll = (error: unknown) => {
      for (const waiting of batch) waiting.reject(error);
    };
    try {
      Promise.resolve(this.#readMany(batch.map((waiting) => waiting.key))).then((values) => {
        for (let i = 0; i < batch.length; i += 1) batch[i]?.resolve(values[i] ?? null);
      }, rejectAll);
    } catch (error) {
      rejectAll(error);
    }
  };
}
