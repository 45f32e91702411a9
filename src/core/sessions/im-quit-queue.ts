import type { Kv } from '../../ports/kv.ts';
import type { Clock } from '../../ports/clock.ts';
import { IM_QUIT_QUEUE_KEY, imQuitJobKey } from './keys.ts';
import { isDeviceFlag, type DeviceFlag } from './policy.ts';

export interface ImQuitRetryOptions {
  /** The first back-off; each failed attempt doubles it, up to MAX_BACKOFF_MS. */
  readonly intervalMs: number;
  readonly maxAttempts: number;
}

/** Settles the owed device_quit of (uid, flag): true once the IM server took it (or nothing is owed). */
export type OwedQuitWork = (uid: string, flag: DeviceFlag) => Promise<boolean>;

export interface DrainReport {
  readonly delivered: number;
  readonly failed: number;
  readonly gaveUp: number;
}

interface Job {
  readonly attempts: number;
  readonly due_at: number;
}

const MAX_BACKOFF_MS = 5 * 60_000;
/** A job nobody works (every node gone) must not stay forever. */
const JOB_TTL_MS = 7 * 24 * 3600_000;

/**
 * The retry queue of device_quit calls the IM server missed (DESIGN §3.4, IM down at logout). What is
 * owed lives in the IM token key itself (`owed:`, im-token-value.ts); this queue remembers WHICH
 * (uid, flag) to look at, and how often it was tried. Per job one string key (attempts, due time),
 * plus one hash listing the jobs so every node's worker finds them. A worker claims a due job by
 * compare-and-set, pushing its due time forward: of all nodes exactly one works it per back-off.
 */
export class ImQuitQueue {
  readonly #kv: Kv;
  readonly #clock: Clock;
  readonly #options: ImQuitRetryOptions;

  constructor(kv: Kv, clock: Clock, options: ImQuitRetryOptions) {
    this.#kv = kv;
    this.#clock = clock;
    this.#options = options;
  }

  /** Queues (uid, flag); a job already queued keeps its attempts and back-off. */
  async enqueue(uid: string, flag: DeviceFlag): Promise<void> {
    const job: Job = { attempts: 0, due_at: this.#clock.now() + this.#options.intervalMs };
    // The job before the listing: a worker that finds the listing always finds the job.
    await this.#kv.set(imQuitJobKey(uid, flag), JSON.stringify(job), { nx: true, ttlMs: JOB_TTL_MS });
    await this.#kv.hset(IM_QUIT_QUEUE_KEY, listingField(uid, flag), '1');
  }

  /** How many (uid, flag) have an owed device_quit. */
  async size(): Promise<number> {
    return Object.keys(await this.#kv.hgetall(IM_QUIT_QUEUE_KEY)).length;
  }

  /** One pass: works every due job this node can claim. */
  async drain(work: OwedQuitWork): Promise<DrainReport> {
    const report = { delivered: 0, failed: 0, gaveUp: 0 };
    for (const field of Object.keys(await this.#kv.hgetall(IM_QUIT_QUEUE_KEY))) {
      const target = parseListingField(field);
      if (target === null) {
        await this.#kv.hdel(IM_QUIT_QUEUE_KEY, field);
        continue;
      }
      const outcome = await this.#workOne(target.uid, target.flag, field, work);
      if (outcome !== null) report[outcome] += 1;
    }
    return report;
  }

  async #workOne(uid: string, flag: DeviceFlag, field: string, work: OwedQuitWork): Promise<keyof DrainReport | null> {
    const key = imQuitJobKey(uid, flag);
    const raw = await this.#kv.get(key);
    const job = parseJob(raw);
    if (raw === null || job === null) {
      await this.#forget(field, key, raw);
      return null;
    }
    const now = this.#clock.now();
    if (job.due_at > now) return null;
    const attempts = job.attempts + 1;
    const claimed = JSON.stringify({ attempts, due_at: now + this.#backoff(attempts) } satisfies Job);
    if (!(await this.#kv.compareAndSet(key, raw, claimed, { keepTtl: true }))) return null;
    let settled = false;
    try {
      settled = await work(uid, flag);
    } catch {
      // A store or IM failure is one more failed attempt; the back-off already moved the job on.
    }
    if (settled || attempts >= this.#options.maxAttempts) {
      await this.#forget(field, key, claimed);
      return settled ? 'delivered' : 'gaveUp';
    }
    return 'failed';
  }

  /**
   * Drops the job (only the version this node saw) and its listing. An enqueue that lands in
   * between re-created the job: then the listing is put back, so that job is not lost.
   */
  async #forget(field: string, key: string, seen: string | null): Promise<void> {
    if (seen !== null) await this.#kv.compareAndDelete(key, seen);
    await this.#kv.hdel(IM_QUIT_QUEUE_KEY, field);
    if ((await this.#kv.get(key)) !== null) await this.#kv.hset(IM_QUIT_QUEUE_KEY, field, '1');
  }

  #backoff(attempts: number): number {
    return Math.min(MAX_BACKOFF_MS, this.#options.intervalMs * 2 ** Math.min(attempts - 1, 20));
  }
}

function listingField(uid: string, flag: DeviceFlag): string {
  return JSON.stringify([uid, flag]);
}

function parseListingField(field: string): { uid: string; flag: DeviceFlag } | null {
  try {
    const [uid, flag] = JSON.parse(field) as unknown[];
    return typeof uid === 'string' && isDeviceFlag(flag) ? { uid, flag } : null;
  } catch {
    return null;
  }
}

function parseJob(raw: string | null): Job | null {
  if (raw === null) return null;
  try {
    const job = JSON.parse(raw) as Partial<Job>;
    return typeof job.attempts === 'number' && typeof job.due_at === 'number' ? { attempts: job.attempts, due_at: job.due_at } : null;
  } catch {
    return null;
  }
}
