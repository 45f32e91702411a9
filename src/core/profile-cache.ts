import type { User } from '../ports/accounts.ts';
import type { Clock } from '../ports/clock.ts';
import { StoreUnavailableError } from '../ports/errors.ts';

interface Entry {
  user: Promise<User | null>;
  until: number;
  /** The last profile the database gave, and when: served while the database is unreachable. */
  known: { readonly user: User | null; readonly at: number } | undefined;
}

/**
 * A short-lived per-node copy of account profiles for `GET /v1/user/current`, the route clients
 * call on every screen. It never decides anything: sessions are validated against the store on
 * every request, and admin checks and logins read the account database. A profile change made on
 * another node shows here at most `ttlMs` late.
 *
 * While the account database is unreachable, the last profile read on this node is served for up
 * to `staleMs` (stale-if-error), so signed-in clients keep working through a PostgreSQL restart:
 * their sessions are validated against the Kv store as always, and nothing is decided on a profile.
 */
export class ProfileCache {
  readonly #load: (uid: string) => Promise<User | null>;
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #staleMs: number;
  readonly #entries = new Map<string, Entry>();

  constructor(load: (uid: string) => Promise<User | null>, clock: Clock, ttlMs = 2_000, maxEntries = 50_000, staleMs = 10 * 60_000) {
    this.#load = load;
    this.#clock = clock;
    this.#ttlMs = ttlMs;
    this.#maxEntries = maxEntries;
    this.#staleMs = staleMs;
  }

  /** Concurrent requests for one uid share one database read. */
  get(uid: string): Promise<User | null> {
    const now = this.#clock.now();
    const cached = this.#entries.get(uid);
    if (cached !== undefined && cached.until > now) return cached.user;
    if (this.#entries.size >= this.#maxEntries) this.#entries.clear();
    const fallback = cached?.known !== undefined && now - cached.known.at <= this.#staleMs ? cached.known : undefined;
    const entry: Entry = { user: Promise.resolve(null), until: now + this.#ttlMs, known: fallback };
    entry.user = this.#load(uid).then(
      (user) => {
        entry.known = { user, at: this.#clock.now() };
        return user;
      },
      (error: unknown) => {
        // Kept for ttlMs like a fresh read, so an outage costs the database one attempt per uid per ttlMs.
        if (fallback !== undefined && error instanceof StoreUnavailableError) return fallback.user;
        // Any other failed read is not remembered.
        if (this.#entries.get(uid) === entry) this.#entries.delete(uid);
        throw error;
      },
    );
    this.#entries.set(uid, entry);
    return entry.user;
  }

  /** Drops this node's copy after a change made here (role, name, status). */
  forget(uid: string): void {
    this.#entries.delete(uid);
  }
}
