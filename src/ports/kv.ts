/**
 * Kv: the small, Redis-shaped store every latchkey protocol is built from (docs/design.md §2).
 *
 * Every method is ONE atomic operation on ONE key, so the same protocols run on Redis Cluster
 * (no cross-slot commands), on SQLite (one transaction per call) and on the in-memory store that the
 * interleaving explorer schedules call by call. TTLs are in milliseconds; a key past its TTL is
 * invisible to every method.
 */
export interface SetOptions {
  /** Write only if the key does not exist (SET NX). */
  readonly nx?: boolean;
  /** Write only if the key exists (SET XX). */
  readonly xx?: boolean;
  /** Expire after this many ms. Without it (and without keepTtl) the key does not expire. */
  readonly ttlMs?: number;
  /** Keep the key's current TTL (SET KEEPTTL). */
  readonly keepTtl?: boolean;
}

export type ExpireMode = 'always' | 'gt';

export type KvMessageHandler = (message: string) => void;

export interface Kv {
  get(key: string): Promise<string | null>;
  /** SET with options. Returns true when the value was written. */
  set(key: string, value: string, options?: SetOptions): Promise<boolean>;
  /** SET key value GET: writes unconditionally (keeping options' TTL) and returns the previous value. */
  swap(key: string, value: string, options?: Pick<SetOptions, 'ttlMs'>): Promise<string | null>;
  /** GETDEL: read and delete in one step. The basis of every one-time thing. */
  getdel(key: string): Promise<string | null>;
  /** DEL of a key that only its owner ever writes. Returns true if it existed. */
  del(key: string): Promise<boolean>;
  /** Delete only if the value is still `expected`. Returns true if deleted. */
  compareAndDelete(key: string, expected: string): Promise<boolean>;
  /** Replace only if the value is still `expected`. Returns true if replaced. */
  compareAndSet(key: string, expected: string, value: string, options?: Pick<SetOptions, 'ttlMs' | 'keepTtl'>): Promise<boolean>;
  /** INCR; sets the TTL when the increment created the key. Returns the new value and the remaining TTL. */
  incr(key: string, ttlMs: number): Promise<{ value: number; ttlMs: number }>;
  /** Sets a TTL; mode 'gt' only lengthens it (EXPIRE GT; a key without TTL keeps none). True if set. */
  expire(key: string, ttlMs: number, mode?: ExpireMode): Promise<boolean>;
  /** Remaining TTL in ms: null if the key does not exist, -1 if it has no TTL. */
  pttl(key: string): Promise<number | null>;
  hset(key: string, field: string, value: string): Promise<void>;
  hget(key: string, field: string): Promise<string | null>;
  /** Returns true if the field existed. */
  hdel(key: string, field: string): Promise<boolean>;
  hgetall(key: string): Promise<Record<string, string>>;
  publish(channel: string, message: string): Promise<void>;
  /** Resolves once the subscription is active; the returned function ends it. */
  subscribe(channel: string, handler: KvMessageHandler): Promise<() => Promise<void>>;
  /** True when the store answers (for /readyz). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
