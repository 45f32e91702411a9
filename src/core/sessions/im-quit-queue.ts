import type { Kv } from '../../ports/kv.ts';
import type { Clock } from '../../ports/clock.ts';
import { IM_QUIT_QUEUE_KEY, imQuitJobKey } from './keys.ts';
import { isDeviceFlag, type DeviceFlag } from './policy.ts';

export interface ImQuitRetryOptions {
  /** The first back-off; each failed attempt doubles it, up to maxIntervalMs. */
  readonly intervalMs: number;
  /** The longest back-off (default 5 minutes): an owed quit is retried at least this often, however long the outage. */
  readonly maxIntervalMs?: number;
  /** After this many failed attempts a job is reported overdue (once); it is still retried. */
  readonly maxAttempts: number;
}

/** Settles the owed device_quit of (uid, flag): true once the IM server took it (or nothing is owed). */
export type OwedQuitWork = (uid: string, flag: DeviceFlag) => Promise<boolean>;

export interface DrainReport {
  readonly delivered: number;
  readonly failed: number;
  /** Jobs whose failed attempts reached maxAttempts in this drain (each is counted once in its life). */
  readonly overdue: number;
}

const DEFAULT_MAX_INTERVAL_MS = 5 * 60_000;

interface Job {
  readonly attempts: number;
  readonly due_at: number;
}

/**
 * The retry queue of device_quit calls the IM server missed (docs/design.md §3.4, IM down at logout). What is
 * owed lives in the IM token key itself (`owed:`, im-token-value.ts); this queue remembers WHICH
 * (uid, flag) to look at, and how often it was tried. Per job one string key (attempts, due time),
 * plus one hash listing the jobs so every node's worker finds them. A worker claims a due job by
 * compare-and-set, pushing its due time forward: of all nodes exactly one works it per back-off.
 *
 * A job is never given up and never expires: WuKongIM keeps a token until it is replaced or quit
 * (it has no lifetime of its own), so a dropped quit would let a banned or logged-out device
 * connect for good. Past maxAttempts it is reported overdue, once, and retried every maxIntervalMs.
 * Once the IM server answers again after failing (seen by this node), the next drain works every
 * job at once instead of each at the end of its own back-off.
 */
export class ImQuitQueue {
  readonly #kv: Kv;
  readonly #clock: Clock;
  readonly #options: ImQuitRetryOptions;
  /** A node that just started has not seen the IM server answer: its first success re-scans the queue. */
  #sawFailure = true;
  #rush = false;

  constructor(kv: Kv, clock: Clock, options: ImQuitRetryOptions) {
    this.#kv = kv;
    this.#clock = clock;
    this.#options = options;
  }

  /** Queues (uid, flag); a job already queued keeps its attempts and back-off. */
  async enqueue(uid: string, flag: DeviceFlag): Promise<void> {
    const job: Job = { attempts: 0, due_at: this.#clock.now() + this.#options.intervalMs };
    // The job before the listing: a worker that finds the listing always finds the job.
    await this.#kv.set(imQuitJobKey(uid, flag), JSON.stringify(job), { nx: true });
    await this.#kv.hset(IM_QUIT_QUEUE_KEY, listingField(uid, flag), '1');
  }

  /** The IM server failed a call made by this node. */
  imFailed(): void {
    this.#sawFailure = true;
  }

  /** The IM server answered a call made by this node: after a failure, the next drain works every job. */
  imAnswered(): void {
    if (!this.#sawFailure) return;
    this.#sawFailure = false;
    this.#rush = true;
  }

  /** How many (uid, flag) have an owed device_quit. */
  async size(): Promise<number> {
    return Object.keys(await this.#kv.hgetall(IM_QUIT_QUEUE_KEY)).length;
  }

  /**
   * Works every due job this node can claim, or every job when the IM server has just answered
   * again. A delivery during the pass is such an answer: one more pass then takes the rest at once.
   */
  async drain(work: OwedQuitWork): Promise<DrainReport> {
    const report = { delivered: 0, failed: 0, overdue: 0 };
    await this.#pass(work, this.#takeRush(), report);
    if (this.#takeRush()) await this.#pass(work, true, report);
    return report;
  }

  #takeRush(): boolean {
    const rush = this.#rush;
    this.#rush = false;
    return rush;
  }

  async #pass(work: OwedQuitWork, everyJob: boolean, report: { delivered: number; failed: number; overdue: number }): Promise<void> {
    for (const field of Object.keys(await this.#kv.hgetall(IM_QUIT_QUEUE_KEY))) {
      const target = parseListingField(field);
      if (target === null) {
        await this.#kv.hdel(IM_QUIT_QUEUE_KEY, field);
        continue;
      }
      const outcome = await this.#workOne(target.uid, target.flag, field, work, everyJob);
      if (outcome === 'delivered') report.delivered += 1;
      if (outcome === 'failed' || outcome === 'overdue') report.failed += 1;
      if (outcome === 'overdue') report.overdue += 1;
    }
  }

  async #workOne(
    uid: string, flag: DeviceFlag, field: string, work: OwedQuitWork, everyJob: boolean,
  ): Promise<'delivered' | 'failed' | 'overdue' | null> {
    const key = imQuitJobKey(uid, flag);
    const raw = await this.#kv.get(key);
    const job = parseJob(raw);
    if (raw === null || job === null) {
      await this.#forget(field, key, raw);
      return null;
    }
    const now = this.#clock.now();
    if (job.due_at > now && !everyJob) return null;
    const attempts = job.attempts + 1;
    const claimed = JSON.stringify({ attempts, due_at: now + this.#backoff(attempts) } satisfies Job);
    // The claim also drops a TTL that a job queued by an older version still carries.
    if (!(await this.#kv.compareAndSet(key, raw, claimed))) return null;
    let settled = false;
    try {
      settled = await work(uid, flag);
    } catch {
      // A store or IM failure is one more failed attempt; the back-off already moved the job on.
    }
    if (settled) {
      await this.#forget(field, key, claimed);
      return 'delivered';
    }
    return attempts === this.#options.maxAttempts ? 'overdue' : 'failed';
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
    const { intervalMs, maxIntervalMs = DEFAULT_MAX_INTERVAL_MS } = this.#options;
    return Math.min(maxIntervalMs, intervalMs * 2 ** Math.min(attempts - 1, 20));
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
