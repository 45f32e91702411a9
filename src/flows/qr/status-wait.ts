import type { Kv } from '../../ports/kv.ts';
import type { Clock } from '../../ports/clock.ts';

/**
 * Pub/sub is a hint, not state: a message published while a Redis subscriber reconnects is lost,
 * and on SQLite another process's change is never announced. Re-reading this often bounds how late
 * such a change is seen.
 */
const RECHECK_MS = 5_000;

export interface StatusWait<T> {
  readonly kv: Kv;
  readonly clock: Clock;
  readonly channel: string;
  /** Reads the current value from the store. */
  readonly read: () => Promise<T>;
  /** True when the value is worth answering with. */
  readonly settled: (value: T) => boolean;
  /** When the value turns into something else by time alone (expiry), or null. */
  readonly lapsesAt: (value: T) => number | null;
  readonly timeoutMs: number;
  /** Client gone or server shutting down: answer with what there is now. */
  readonly signal: AbortSignal;
}

/**
 * Long-poll: answers as soon as the value settles, or at the timeout with the value as it is.
 * Every waiting poll has its own subscription, so two polls of one request both wake (octo-server's
 * per-process channel map let the second poll steal the first one's wake-up, docs/octo-server.md §5).
 */
export async function waitForStatus<T>(wait: StatusWait<T>): Promise<T> {
  const wakeup = new Wakeup();
  const unsubscribe = await wait.kv.subscribe(wait.channel, () => wakeup.notify());
  try {
    const deadline = wait.clock.now() + wait.timeoutMs;
    // Read only once subscribed: a change published between an earlier read and the subscription
    // would otherwise go unnoticed until the timeout (the lost wake-up).
    let value = await wait.read();
    while (!wait.settled(value) && !wait.signal.aborted) {
      const now = wait.clock.now();
      const lapse = wait.lapsesAt(value);
      const until = Math.min(deadline, lapse ?? deadline, now + RECHECK_MS);
      if (now >= deadline) break;
      // A floor, so a value that lapses this very millisecond cannot spin the loop.
      await wakeup.wait(Math.max(10, until - now), wait.signal);
      value = await wait.read();
    }
    return value;
  } finally {
    await unsubscribe().catch(() => {});
  }
}

/** A notification that is remembered until the next wait, so one arriving mid-read is not lost. */
class Wakeup {
  #pending = false;
  #release: (() => void) | null = null;

  notify(): void {
    this.#pending = true;
    this.#release?.();
  }

  async wait(ms: number, signal: AbortSignal): Promise<void> {
    if (!this.#pending && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const release = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', release);
          this.#release = null;
          resolve();
        };
        const timer = setTimeout(release, ms);
        signal.addEventListener('abort', release);
        this.#release = release;
      });
    }
    this.#pending = false;
  }
}
