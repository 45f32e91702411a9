import type { Clock } from '../../ports/clock.ts';
import type { Delay } from '../../core/guards.ts';

const realDelay: Delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** How a delivery ended, as far as the answer is concerned: `late` is still running. */
export type DeliveryOutcome = 'delivered' | 'failed' | 'late';

/**
 * code/send answers `answerMs` after the request arrived, for every destination (docs/security.md §2, item 8).
 * Only addresses with an account get a real delivery; answering when it ends told anyone which
 * addresses those were (and imitating a delivery's time had nothing to imitate after a restart).
 *
 * A delivery that ends within `answerMs` is answered as before: 200, or 503 with the code withdrawn.
 * One still running then is answered 200 and finishes in the background (a failure is logged, the
 * code withdrawn and the cooldown released, so the user may simply ask again). With `answerMs` 0 the
 * answer waits for the delivery, however long: no padding, and the timing tells (development only).
 */
export class SendTiming {
  readonly #clock: Clock;
  readonly #answerMs: number;
  readonly #delay: Delay;

  constructor(clock: Clock, answerMs: number, delay: Delay = realDelay) {
    this.#clock = clock;
    this.#answerMs = answerMs;
    this.#delay = delay;
  }

  /** When this request's answer is due. */
  deadline(): number {
    return this.#clock.now() + this.#answerMs;
  }

  /** Waits for the delivery, but not past the deadline. */
  async race(deadline: number, delivery: Promise<'delivered' | 'failed'>): Promise<DeliveryOutcome> {
    if (this.#answerMs === 0) return delivery;
    const late = this.#delay(Math.max(0, deadline - this.#clock.now())).then((): DeliveryOutcome => 'late');
    return Promise.race([delivery, late]);
  }

  /** Waits until the deadline (at once if it has passed). */
  async until(deadline: number): Promise<void> {
    const left = deadline - this.#clock.now();
    if (left >= 1) await this.#delay(left);
  }
}
