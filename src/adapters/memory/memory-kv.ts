/**
 * Kv in process memory: for tests and for the interleaving explorer (docs/design.md §3.3).
 *
 * Every method does all of its work synchronously, before it returns its promise, so each call is
 * one atomic step however the caller interleaves them. Like Redis, a key holds either a string or a
 * hash (mixing them throws WRONGTYPE), and a key past its TTL is invisible; expired entries are
 * removed when next touched.
 */
import { systemClock, type Clock } from '../../ports/clock.ts';
import type { ExpireMode, Kv, KvMessageHandler, SetOptions } from '../../ports/kv.ts';
import { checkSetOptions, checkTtl, parseCounter } from '../kv-arguments.ts';
import { LocalPubSub } from './local-pubsub.ts';

type Entry =
  | { kind: 'string'; value: string; expiresAt: number | null }
  | { kind: 'hash'; fields: Map<string, string>; expiresAt: number | null };

type StringEntry = Extract<Entry, { kind: 'string' }>;
type HashEntry = Extract<Entry, { kind: 'hash' }>;

export class MemoryKv implements Kv {
  readonly #entries = new Map<string, Entry>();
  readonly #pubsub = new LocalPubSub();
  readonly #clock: Clock;

  constructor(clock: Clock = systemClock) {
    this.#clock = clock;
  }

  /** Live keys, for tests. */
  keys(): string[] {
    return [...this.#entries.keys()].filter((key) => this.#live(key) !== undefined);
  }

  async get(key: string): Promise<string | null> {
    return this.#string(key)?.value ?? null;
  }

  async set(key: string, value: string, options: SetOptions = {}): Promise<boolean> {
    checkSetOptions(options);
    // Like Redis SET, this replaces a value of either kind.
    const current = this.#live(key);
    if ((options.nx && current) || (options.xx && !current)) return false;
    const expiresAt = options.keepTtl ? (current?.expiresAt ?? null) : this.#expiry(options.ttlMs);
    this.#entries.set(key, { kind: 'string', value, expiresAt });
    return true;
  }

  async swap(key: string, value: string, options: Pick<SetOptions, 'ttlMs'> = {}): Promise<string | null> {
    if (options.ttlMs !== undefined) checkTtl(options.ttlMs);
    const previous = this.#string(key)?.value ?? null;
    this.#entries.set(key, { kind: 'string', value, expiresAt: this.#expiry(options.ttlMs) });
    return previous;
  }

  async getdel(key: string): Promise<string | null> {
    const current = this.#string(key);
    if (!current) return null;
    this.#entries.delete(key);
    return current.value;
  }

  async del(key: string): Promise<boolean> {
    const existed = this.#live(key) !== undefined;
    this.#entries.delete(key);
    return existed;
  }

  async compareAndDelete(key: string, expected: string): Promise<boolean> {
    if (this.#string(key)?.value !== expected) return false;
    this.#entries.delete(key);
    return true;
  }

  async compareAndSet(
    key: string,
    expected: string,
    value: string,
    options: Pick<SetOptions, 'ttlMs' | 'keepTtl'> = {},
  ): Promise<boolean> {
    checkSetOptions(options);
    const current = this.#string(key);
    if (current?.value !== expected) return false;
    const expiresAt = options.keepTtl ? current.expiresAt : this.#expiry(options.ttlMs);
    this.#entries.set(key, { kind: 'string', value, expiresAt });
    return true;
  }

  async incr(key: string, ttlMs: number): Promise<{ value: number; ttlMs: number }> {
    checkTtl(ttlMs);
    const current = this.#string(key);
    const value = current ? parseCounter(current.value) + 1 : 1;
    const expiresAt = current ? current.expiresAt : this.#expiry(ttlMs);
    this.#entries.set(key, { kind: 'string', value: String(value), expiresAt });
    return { value, ttlMs: this.#remaining(expiresAt) };
  }

  async expire(key: string, ttlMs: number, mode: ExpireMode = 'always'): Promise<boolean> {
    checkTtl(ttlMs);
    const entry = this.#live(key);
    if (!entry) return false;
    const expiresAt = this.#clock.now() + ttlMs;
    // EXPIRE GT: a key without a TTL counts as never expiring, so nothing is greater.
    if (mode === 'gt' && (entry.expiresAt === null || expiresAt <= entry.expiresAt)) return false;
    entry.expiresAt = expiresAt;
    return true;
  }

  async pttl(key: string): Promise<number | null> {
    const entry = this.#live(key);
    return entry ? this.#remaining(entry.expiresAt) : null;
  }

  async hset(key: string, field: string, value: string): Promise<void> {
    const entry = this.#hash(key) ?? { kind: 'hash', fields: new Map<string, string>(), expiresAt: null };
    entry.fields.set(field, value);
    this.#entries.set(key, entry);
  }

  async hget(key: string, field: string): Promise<string | null> {
    return this.#hash(key)?.fields.get(field) ?? null;
  }

  async hdel(key: string, field: string): Promise<boolean> {
    const entry = this.#hash(key);
    if (!entry?.fields.delete(field)) return false;
    // Redis deletes a hash (and its TTL) with its last field.
    if (entry.fields.size === 0) this.#entries.delete(key);
    return true;
  }

  async hgetall(key: string): Promise<Record<string, string>> {
    return Object.fromEntries(this.#hash(key)?.fields ?? []);
  }

  async publish(channel: string, message: string): Promise<void> {
    this.#pubsub.publish(channel, message);
  }

  async subscribe(channel: string, handler: KvMessageHandler): Promise<() => Promise<void>> {
    const unsubscribe = this.#pubsub.subscribe(channel, handler);
    return async () => unsubscribe();
  }

  async ping(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    this.#pubsub.clear();
  }

  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry?.expiresAt != null && entry.expiresAt <= this.#clock.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }

  #string(key: string): StringEntry | undefined {
    const entry = this.#live(key);
    if (entry?.kind === 'hash') throw wrongType(key);
    return entry;
  }

  #hash(key: string): HashEntry | undefined {
    const entry = this.#live(key);
    if (entry?.kind === 'string') throw wrongType(key);
    return entry;
  }

  #expiry(ttlMs: number | undefined): number | null {
    return ttlMs === undefined ? null : this.#clock.now() + ttlMs;
  }

  #remaining(expiresAt: number | null): number {
    return expiresAt === null ? -1 : expiresAt - this.#clock.now();
  }
}

function wrongType(key: string): Error {
  return new TypeError(`WRONGTYPE ${key} holds the other kind of value (string vs hash)`);
}
