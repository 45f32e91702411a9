import type { Clock } from '../../ports/clock.ts';
import type { CodeChannel } from '../../ports/sender.ts';
import type { Delay } from '../../core/guards.ts';

const realDelay: Delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** Weight of the newest sample in the moving average. */
const ALPHA = 0.2;
const MAX_IMITATION_MS = 5_000;

/**
 * When no code is sent (login or reset for an address without an account), code/send still takes
 * about as long as a real delivery on that channel: otherwise a fast answer would reveal that the
 * account does not exist even though the body is the same (API.md: no enumeration).
 */
export class SendTiming {
  readonly #clock: Clock;
  readonly #delay: Delay;
  readonly #typicalMs = new Map<CodeChannel, number>();

  constructor(clock: Clock, delay: Delay = realDelay) {
    this.#clock = clock;
    this.#delay = delay;
  }

  /** Runs a real delivery and learns how long deliveries on this channel take. */
  async measure(channel: CodeChannel, deliver: () => Promise<void>): Promise<void> {
    const started = this.#clock.now();
    await deliver();
    const took = Math.max(0, this.#clock.now() - started);
    const previous = this.#typicalMs.get(channel);
    this.#typicalMs.set(channel, previous === undefined ? took : previous + ALPHA * (took - previous));
  }

  /** Waits about as long as a delivery on this channel, with a little jitter like a real one. */
  async imitate(channel: CodeChannel, jitter: number): Promise<void> {
    const typical = this.#typicalMs.get(channel) ?? 0;
    const ms = Math.min(MAX_IMITATION_MS, typical * (0.85 + 0.3 * jitter));
    if (ms >= 1) await this.#delay(ms);
  }
}
