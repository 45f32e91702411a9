import type { User } from '../ports/accounts.ts';
import type { Clock } from '../ports/clock.ts';

/**
 * A short-lived per-node copy of account profiles for `GET /v1/user/current`, the route clients
 * call on every screen. It never decides anything: sessions are validated against the store on
 * every request, and admin checks and logins read the account database. A profile change made on
 * another node shows here at most `ttlMs` late.
 */
export class ProfileCache {
  readonly #load: (uid: string) => Promise<User | null>;
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #entries = new Map<string, { user: Promise<User | null>; until: number }>();

  constructor(load: (uid: string) => Promise<User | null>, clock: Clock, ttlMs = 2_000, maxEntries = 50_000) {
    this.#load = load;
    this.#clock = clock;
    this.#ttlMs = ttlMs;
    this.#maxEntries = maxEntries;
  }

  /** Concurrent requests for one uid share one database read. */
  get(uid: string): Promise<User | null> {
    const now = this.#clock.now();
    const cached = this.#entries.get(uid);
    if (cached !== undefined && cached.until > now) return cached.user;
    if (this.#entries.size >= this.#maxEntries) this.#entries.clear();
    const user = this.#load(uid);
    this.#entries.set(uid, { user, until: now + this.#ttlMs });
    // A failed read is not remembered.
    user.catch(() => this.#entries.delete(uid));
    return user;
  }

  /** Drops this node's copy after a change made here (role, name, status). */
  forget(uid: string): void {
    this.#entries.delete(uid);
  }
}
