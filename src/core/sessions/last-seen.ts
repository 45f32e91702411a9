/**
 * `seen:<sid>`: when a session was last used, for session lists and the inactivity timeout. Written
 * at most once per interval per session by each node (never on every request, never blocking it).
 */
import type { Kv } from '../../ports/kv.ts';
import { lastSeenKey, sessionKey } from './keys.ts';
import type { Session } from './record.ts';

/** Sessions this node remembers stamping; past it the memo starts over (a few extra writes, no growth). */
const MAX_TOUCH_ENTRIES = 100_000;

export class LastSeenStamps {
  readonly #kv: Kv;
  readonly #intervalMs: number;
  /** sid → when this node last wrote its last_seen_at. */
  readonly #touchedAt = new Map<string, number>();

  constructor(kv: Kv, intervalMs: number) {
    this.#kv = kv;
    this.#intervalMs = intervalMs;
  }

  touch(session: Session, now: number): void {
    const last = this.#touchedAt.get(session.sid);
    if (last !== undefined && now - last < this.#intervalMs) return;
    if (this.#touchedAt.size >= MAX_TOUCH_ENTRIES) this.#touchedAt.clear();
    this.#touchedAt.set(session.sid, now);
    const key = lastSeenKey(session.sid);
    const stamp = String(now);
    this.#kv.set(key, stamp, { ttlMs: session.expires_at - now })
      // A logout between the validation and this write deleted the key before it was written, and
      // the write would outlive the session by up to its whole lifetime. Looking after writing:
      // whichever of the two runs second removes the key.
      .then(async () => {
        if ((await this.#kv.get(sessionKey(session.sid))) === null) await this.#kv.compareAndDelete(key, stamp);
      })
      .catch(() => {
        // A lost last-seen write is harmless; the next request past the interval retries it.
        this.#touchedAt.delete(session.sid);
      });
  }

  /** Deletes the stamp of a session that ended (only that session writes it). */
  async forget(sid: string): Promise<void> {
    await this.#kv.del(lastSeenKey(sid));
    this.#touchedAt.delete(sid);
  }
}
