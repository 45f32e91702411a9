/**
 * The token mirror into octo-server's Redis (docs/octo-compat.md §3). octo-server authenticates a
 * request by reading `token:<t>` → `uid@name@role` from its own Redis; with this mirror an unmodified
 * octo-server accepts latchkey's tokens, and stops accepting them when their session ends.
 *
 * Two stores, no transaction between them, so the same discipline as the IM bridge (docs/design.md
 * §3.4): whichever of a login and an ending looks last sees the other.
 *
 * - A login writes the mirror keys (the sid key naming the token first, then the token key), and
 *   only then re-reads its session record in latchkey's store; if the session ended meanwhile it
 *   removes what it wrote. An ending removes the record first (GETDEL, the step that ends it) and
 *   the mirror keys after. Either the login's re-read comes after the GETDEL (the login removes its
 *   own keys) or both its writes came before the ending's removal (the ending removes them): a key a
 *   logout removed is never left behind by a login.
 * - An ending is queued in latchkey's store before it is tried, and the job leaves the queue only
 *   once the keys are gone; a Redis that is down is retried by every node's worker until it answers,
 *   never given up. A logout answers only once nothing is owed for its session (503 otherwise).
 *
 * The sid key exists because an ending by sid (revoke, ban, a replaced phone) does not know the
 * token; it is kept in octo-server's Redis, which holds the token in clear as a key name anyway, so
 * latchkey's own store never holds a token.
 */
import type { Clock } from '../../ports/clock.ts';
import type { Kv } from '../../ports/kv.ts';
import { StoreUnavailableError } from '../../ports/errors.ts';
import { sessionKey } from './keys.ts';
import type { Session } from './record.ts';

/** Removals owed to octo-server's Redis: sid → `{uid, attempts, due_at}` (in latchkey's store). */
export const OCTO_MIRROR_QUEUE_KEY = 'octo-mirror-queue';

export interface OctoMirrorOptions {
  /** latchkey's store: the session records and the queue of owed removals. */
  readonly kv: Kv;
  /** octo-server's Redis. */
  readonly mirror: Kv;
  readonly clock: Clock;
  /** octo-server's `cache.tokenCachePrefix` (`token:`). */
  readonly tokenPrefix: string;
  /** The sid → token keys, beside octo's (`latchkey:octo-sid:`). */
  readonly sidPrefix: string;
  /** octo-server's token lifetime; a mirrored key never outlives its session either. */
  readonly tokenTtlMs: number;
  readonly retryIntervalMs: number;
  readonly retryMaxIntervalMs: number;
}

/** Who the token is, as octo-server's AuthMiddleware reads it. */
export interface MirroredUser {
  readonly uid: string;
  readonly name: string;
  /** latchkey's role: `admin` is octo's `admin`, anything else octo's empty role. */
  readonly role: string;
}

export interface MirrorDrainReport {
  readonly removed: number;
  readonly failed: number;
}

interface Job {
  readonly attempts: number;
  readonly due_at: number;
}

/**
 * octo-server splits the value on every `@` (not SplitN): a name holding `@admin` would become the
 * role. So `@` and control characters never reach the value, in the name or the uid.
 */
export function octoTokenValue(user: MirroredUser): string {
  const clean = (text: string): string => text.replace(/[@\p{Cc}]/gu, '_');
  return `${clean(user.uid)}@${clean(user.name)}@${user.role === 'admin' ? 'admin' : ''}`;
}

export class OctoMirror {
  readonly #options: OctoMirrorOptions;

  constructor(options: OctoMirrorOptions) {
    this.#options = options;
  }

  tokenKey(token: string): string {
    return `${this.#options.tokenPrefix}${token}`;
  }

  #sidKey(sid: string): string {
    return `${this.#options.sidPrefix}${sid}`;
  }

  /**
   * After a login issued `session` and before its token is handed out. Throws (StoreUnavailableError)
   * when octo-server's Redis does not answer: the caller then ends the session, whose ending queues
   * the removal of whatever half landed. Returns false when the session had already ended (its keys
   * are removed again, or queued for removal).
   */
  async started(token: string, session: Session, user: MirroredUser): Promise<boolean> {
    const { mirror, kv, clock, tokenTtlMs } = this.#options;
    const ttlMs = Math.min(tokenTtlMs, session.expires_at - clock.now());
    if (ttlMs <= 0) return false;
    await mirror.set(this.#sidKey(session.sid), token, { ttlMs });
    await mirror.set(this.tokenKey(token), octoTokenValue(user), { ttlMs });
    // Looked at after both writes: an ending that removed the record before this read may have
    // looked for the sid key before it was written (docs/octo-compat.md §3).
    if ((await kv.get(sessionKey(session.sid))) !== null) return true;
    // Removed by the token itself: the ending may have looked for the sid key before it was written.
    await this.ended(session, token);
    return false;
  }

  /**
   * After a session ended (its record is gone): queue the removal, then try it. True when the
   * mirror keys are gone; false when octo-server's Redis did not answer (the job stays queued).
   */
  async ended(session: Pick<Session, 'sid' | 'uid'>, token?: string): Promise<boolean> {
    const { kv, clock } = this.#options;
    const job: Job = { attempts: 0, due_at: clock.now() };
    try {
      await kv.hset(OCTO_MIRROR_QUEUE_KEY, session.sid, JSON.stringify(job));
    } catch (error) {
      // latchkey's store is down: the removal is still tried now, and a logout that asked answers
      // 503 unless it landed (it cannot be retried from a queue it could not join).
      if (!(error instanceof StoreUnavailableError)) throw error;
    }
    return this.#work(session.sid, job, token);
  }

  /** Whether a removal is still owed for this session. */
  async owes(sid: string): Promise<boolean> {
    return (await this.#options.kv.hget(OCTO_MIRROR_QUEUE_KEY, sid)) !== null;
  }

  async owedCount(): Promise<number> {
    return Object.keys(await this.#options.kv.hgetall(OCTO_MIRROR_QUEUE_KEY)).length;
  }

  /** One pass of the queue: every due removal is tried; a failed one backs off (doubling, capped). */
  async drain(): Promise<MirrorDrainReport> {
    const now = this.#options.clock.now();
    let removed = 0;
    let failed = 0;
    for (const [sid, raw] of Object.entries(await this.#options.kv.hgetall(OCTO_MIRROR_QUEUE_KEY))) {
      const job = parseJob(raw);
      if (job.due_at > now) continue;
      if (await this.#work(sid, job)) removed++;
      else failed++;
    }
    return { removed, failed };
  }

  /**
   * Removes the mirror keys of `sid` (the token key by `known`, else by the sid key); leaves the
   * queue only once they are gone. Idempotent. The sid key is removed only by compare-and-delete of
   * the token it named, never blindly: an ending that looked before the login wrote it must not
   * erase it, or a removal retried from the queue could no longer find the token key.
   */
  async #work(sid: string, job: Job, known?: string): Promise<boolean> {
    const { mirror, kv, clock, retryIntervalMs, retryMaxIntervalMs } = this.#options;
    try {
      const token = known ?? (await mirror.get(this.#sidKey(sid)));
      if (token !== null) {
        await mirror.del(this.tokenKey(token));
        await mirror.compareAndDelete(this.#sidKey(sid), token);
      }
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      const attempts = job.attempts + 1;
      const backOff = Math.min(retryMaxIntervalMs, retryIntervalMs * 2 ** Math.min(attempts - 1, 20));
      // Another node may have removed it meanwhile: rewriting the job costs one more idempotent try.
      await kv.hset(OCTO_MIRROR_QUEUE_KEY, sid, JSON.stringify({ attempts, due_at: clock.now() + backOff }));
      return false;
    }
    await kv.hdel(OCTO_MIRROR_QUEUE_KEY, sid);
    return true;
  }
}

function parseJob(raw: string): Job {
  try {
    const job = JSON.parse(raw) as Partial<Job>;
    return { attempts: typeof job.attempts === 'number' ? job.attempts : 0, due_at: typeof job.due_at === 'number' ? job.due_at : 0 };
  } catch {
    return { attempts: 0, due_at: 0 };
  }
}
