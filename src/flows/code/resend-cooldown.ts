import type { Kv } from '../../ports/kv.ts';
import type { Random } from '../../ports/random.ts';
import { rateLimited } from '../../core/errors.ts';
import { destinationId, type Destination } from '../../core/destinations.ts';

export const RESEND_COOLDOWN_SECONDS = 60;

/**
 * One code per destination per minute for each requester (IP, or IPv6 /64), whatever the purpose:
 * someone who knows a victim's number cannot turn latchkey into an SMS bomb, and each resend costs a
 * minute. Keyed by requester too (docs/security.md §2, item 7): a stranger's send must not start the owner's
 * cooldown. The send limits bound what many requesters together can do. SET NX makes it hold across
 * nodes without a read-then-write race.
 */
export class ResendCooldown {
  readonly #kv: Kv;
  readonly #random: Random;

  constructor(kv: Kv, random: Random) {
    this.#kv = kv;
    this.#random = random;
  }

  /** Starts the cooldown, or throws rate_limited with the seconds left. Returns what `release` needs. */
  async start(destination: Destination, requester: string): Promise<string> {
    const key = cooldownKey(destination, requester);
    const holder = this.#random.bytes(12).toString('base64url');
    if (await this.#kv.set(key, holder, { nx: true, ttlMs: RESEND_COOLDOWN_SECONDS * 1000 })) return holder;
    const left = await this.#kv.pttl(key);
    // At least 1 s, also when the key expired between the two calls (pttl null or negative).
    throw rateLimited(Math.max(1, Math.ceil((left ?? 0) / 1000)));
  }

  /** After a failed delivery the user may retry at once; compare-and-delete so only our own cooldown goes. */
  async release(destination: Destination, requester: string, holder: string): Promise<void> {
    await this.#kv.compareAndDelete(cooldownKey(destination, requester), holder);
  }
}

const cooldownKey = (destination: Destination, requester: string): string =>
  `code:cooldown:${destinationId(destination)}:${requester}`;
