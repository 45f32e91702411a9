/**
 * Live sessions by the hundred thousand, written straight into the node's store through the Kv
 * adapter — what SessionService.issue writes (the record with NX and its TTL, and the user's index
 * entry), without HTTP logins, password hashing or device policies. For the growth and logout
 * scenarios only: a seeded session is indistinguishable from an issued one to validate and logout.
 */
import type { Kv } from '../src/ports/kv.ts';
import { cryptoRandom } from '../src/ports/random.ts';
import { systemClock } from '../src/ports/clock.ts';
import { openKv } from '../src/runtime/runtime.ts';
import { sessionKey, userSessionsKey } from '../src/core/sessions/keys.ts';
import { encodeIndexEntry, type SessionRecord } from '../src/core/sessions/record.ts';
import { newSessionToken } from '../src/core/sessions/token.ts';
import { BENCH_DEVICE } from './server.ts';

/** Calls in flight at once: enough for ioredis to pipeline them, small enough to bound memory. */
const IN_FLIGHT = 512;
/** latchkey's default session lifetime (config session_ttl). */
const TTL_MS = 30 * 24 * 3600 * 1000;
const WEB = 1;

export interface Seeded {
  /** Sessions written by this call. */
  readonly written: number;
  /** Tokens kept (a uniform sample of all written, or all of them). */
  readonly tokens: string[];
}

/**
 * Writes `count` Web sessions, spread round-robin over `uids` (which must be registered users: the
 * validated route reads their profile). Keeps a uniform sample of `keep` tokens (reservoir).
 */
export async function seedSessions(kv: Kv, uids: readonly string[], count: number, keep: number): Promise<Seeded> {
  const tokens: string[] = [];
  let written = 0;
  const writeOne = async (index: number) => {
    const uid = uids[index % uids.length];
    if (uid === undefined) throw new Error('seedSessions needs at least one uid');
    const { token, sid } = newSessionToken(cryptoRandom);
    const now = systemClock.now();
    const record: SessionRecord = {
      uid, device_flag: WEB, ...BENCH_DEVICE, method: 'password', ip: '127.0.0.1', user_agent: 'latchkey-bench',
      created_at: now, expires_at: now + TTL_MS,
    };
    if (!(await kv.set(sessionKey(sid), JSON.stringify(record), { nx: true, ttlMs: TTL_MS }))) throw new Error('sid collision');
    await kv.hset(userSessionsKey(uid), sid, encodeIndexEntry(WEB, now, record.expires_at));
    written += 1;
    if (tokens.length < keep) tokens.push(token);
    else {
      const slot = Math.floor(Math.random() * written);
      if (slot < keep) tokens[slot] = token;
    }
  };
  for (let start = 0; start < count; start += IN_FLIGHT) {
    const batch = Array.from({ length: Math.min(IN_FLIGHT, count - start) }, (_, i) => writeOne(start + i));
    await Promise.all(batch);
  }
  return { written, tokens };
}

/** The node's own store, opened from this process (SQLite: the same file; Redis: a second client). */
export function openStore(storeUrl: string): Promise<Kv> {
  return openKv(storeUrl, systemClock);
}
