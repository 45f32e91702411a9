/**
 * How many QR long-polls this node holds, per client address and per login request. A held poll is
 * a socket and a store subscription on this node; without a cap one client held 3,000 polls on a
 * single uuid. The counts are per node, in-process, like the sockets they bound: a client spread
 * over N nodes holds at most N times the cap, which the load balancer's own connection limits bound.
 */
export interface PollCaps {
  readonly perIp: number;
  readonly perRequest: number;
}

/** Gives the slot back; safe to call more than once. */
export type ReleaseSlot = () => void;

export class PollSlots {
  readonly #caps: PollCaps;
  readonly #byIp = new Map<string, number>();
  readonly #byRequest = new Map<string, number>();

  constructor(caps: PollCaps) {
    this.#caps = caps;
  }

  /**
   * Takes one slot for this address and this request, or null when either is full. Check and take
   * are one synchronous step, so parallel polls cannot all pass the check before any has counted.
   */
  take(ip: string, uuid: string): ReleaseSlot | null {
    if (count(this.#byIp, ip) >= this.#caps.perIp || count(this.#byRequest, uuid) >= this.#caps.perRequest) return null;
    add(this.#byIp, ip, 1);
    add(this.#byRequest, uuid, 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      add(this.#byIp, ip, -1);
      add(this.#byRequest, uuid, -1);
    };
  }
}

const count = (counts: Map<string, number>, key: string): number => counts.get(key) ?? 0;

/** Empty entries are dropped, so the maps hold only what is being held now. */
function add(counts: Map<string, number>, key: string, delta: number): void {
  const next = count(counts, key) + delta;
  if (next <= 0) counts.delete(key);
  else counts.set(key, next);
}
