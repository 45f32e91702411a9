/**
 * Kv on one SQLite file (node:sqlite): the embedded default store (docs/design.md §2).
 *
 * Atomicity, also between processes sharing the file: a method is either one SQL statement
 * (atomic by itself) or one BEGIN IMMEDIATE transaction, which takes the write lock before it reads,
 * so no other writer can slip between its read and its write. Those calls are synchronous under the
 * hood, so within a process nothing interleaves with them either. get() alone is batched: the keys
 * read in one event-loop turn are looked up together when the turn ends (read-batch.ts).
 *
 * Unlike Redis, a key's kind (string or hash) is not enforced: latchkey never stores both under one
 * key. Pub/sub reaches subscribers in this process only; wake-ups across processes need Redis.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLOutputValue } from 'node:sqlite';
import { systemClock, type Clock } from '../../ports/clock.ts';
import { StoreUnavailableError } from '../../ports/errors.ts';
import type { ExpireMode, Kv, KvMessageHandler, SetOptions } from '../../ports/kv.ts';
import { checkSetOptions, checkTtl, parseCounter } from '../kv-arguments.ts';
import { prepareStatements, SCHEMA, type Statements } from './sqlite-kv-schema.ts';
import { acquirePubSub, type SharedPubSub } from './sqlite-pubsub.ts';
import { holdCheckpoints, releaseCheckpoints } from './checkpointer.ts';
import { ReadBatch } from '../read-batch.ts';

export interface SqliteKvOptions {
  /** A file path (its directory is created if missing) or ':memory:'. */
  readonly path: string;
  readonly clock?: Clock;
  /** How often expired rows are deleted from disk. Default 60 s. */
  readonly sweepIntervalMs?: number;
  /**
   * How long a call waits for the write lock, held by another process or by this process's own
   * account database in a transaction, before failing with StoreUnavailableError. Default 2 s.
   */
  readonly busyTimeoutMs?: number;
  /** How much of the file reads may map (PRAGMA mmap_size); 0 reads with read() only. Default 1 GiB. */
  readonly mmapBytes?: number;
}

const DEFAULT_MMAP_BYTES = 2 ** 30;
/** How long one attempt may block the thread waiting for the write lock. */
const BLOCKING_WAIT_MS = 20;

type Row = Record<string, SQLOutputValue> | undefined;

export class SqliteKv implements Kv {
  readonly #db: DatabaseSync;
  readonly #sql: Statements;
  readonly #clock: Clock;
  readonly #pubsub: SharedPubSub;
  readonly #sweepTimer: NodeJS.Timeout;
  readonly #reads = new ReadBatch((keys) => this.#readMany(keys));
  readonly #busyTimeoutMs: number;

  constructor(options: SqliteKvOptions) {
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    // Only a short blocking wait inside SQLite: a call that finds the lock taken gives the event
    // loop back and tries again (#retrying). Waiting the whole timeout here deadlocked against this
    // very process when the account database (the same file) held the lock across the awaits of a
    // transaction: the ban of one admin answered 503 while another admin's ban was in its UPDATE.
    this.#db = new DatabaseSync(options.path, { timeout: BLOCKING_WAIT_MS });
    this.#busyTimeoutMs = options.busyTimeoutMs ?? 2000;
    this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
    // Reads through a memory map instead of read() calls: past the 2 MB page cache (~3,000
    // sessions) each validation cost a few syscalls more, and with 10^5 sessions a quarter more
    // CPU. The map only covers reads; writes and the WAL still go through the file.
    this.#db.exec(`PRAGMA mmap_size = ${options.mmapBytes ?? DEFAULT_MMAP_BYTES}`);
    this.#db.exec(SCHEMA);
    // WAL checkpoints run on a worker thread, not inside a commit on the event loop (checkpointer.ts).
    holdCheckpoints(options.path, this.#db);
    this.#sql = prepareStatements(this.#db);
    this.#clock = options.clock ?? systemClock;
    this.#pubsub = acquirePubSub(options.path);
    this.#sweepTimer = setInterval(() => this.#sweepQuietly(), options.sweepIntervalMs ?? 60_000);
    this.#sweepTimer.unref();
  }

  get(key: string): Promise<string | null> {
    return this.#reads.get(key);
  }

  /** One statement for all the keys read in this event-loop turn (read-batch.ts). */
  #readMany(keys: readonly string[]): Promise<(string | null)[]> {
    return this.#retrying(() => {
      const values = new Map<string, string>();
      for (const row of this.#sql.getMany.all(JSON.stringify(keys), this.#now())) {
        const key = text(row, 'key');
        const value = text(row, 'value');
        if (key !== null && value !== null) values.set(key, value);
      }
      return keys.map((key) => values.get(key) ?? null);
    });
  }

  async set(key: string, value: string, options: SetOptions = {}): Promise<boolean> {
    checkSetOptions(options);
    const now = this.#now();
    const expiresAt = options.ttlMs === undefined ? null : now + options.ttlMs;
    const keepTtl = options.keepTtl ? 1 : 0;
    return this.#retrying(() => {
      if (options.nx) return this.#sql.insertIfAbsent.run({ key, value, expiresAt, now }).changes > 0;
      if (options.xx) {
        return this.#sql.updateIfPresent.run({ key, value, expiresAt, keepTtl, expected: null, now }).changes > 0;
      }
      this.#sql.upsert.run({ key, value, expiresAt, keepTtl, now });
      return true;
    });
  }

  async swap(key: string, value: string, options: Pick<SetOptions, 'ttlMs'> = {}): Promise<string | null> {
    if (options.ttlMs !== undefined) checkTtl(options.ttlMs);
    const now = this.#now();
    const expiresAt = options.ttlMs === undefined ? null : now + options.ttlMs;
    return this.#transaction(() => {
      const previous = text(this.#sql.getRow.get({ key, now }), 'value');
      this.#sql.upsert.run({ key, value, expiresAt, keepTtl: 0, now });
      return previous;
    });
  }

  async getdel(key: string): Promise<string | null> {
    return this.#retrying(() => text(this.#sql.takeString.get({ key, now: this.#now() }), 'value'));
  }

  async del(key: string): Promise<boolean> {
    const now = this.#now();
    return this.#transaction(() => {
      const hadHash = this.#sql.hashExists.get({ key, now }) !== undefined;
      const hadString = this.#sql.getRow.get({ key, now }) !== undefined;
      this.#sql.deleteString.run({ key });
      this.#sql.deleteHash.run({ key });
      this.#sql.deleteOrphanHashExpiry.run({ key });
      return hadString || hadHash;
    });
  }

  async compareAndDelete(key: string, expected: string): Promise<boolean> {
    return this.#retrying(() => this.#sql.deleteStringIf.run({ key, expected, now: this.#now() }).changes > 0);
  }

  async compareAndSet(
    key: string,
    expected: string,
    value: string,
    options: Pick<SetOptions, 'ttlMs' | 'keepTtl'> = {},
  ): Promise<boolean> {
    checkSetOptions(options);
    const now = this.#now();
    const expiresAt = options.ttlMs === undefined ? null : now + options.ttlMs;
    const keepTtl = options.keepTtl ? 1 : 0;
    return this.#retrying(
      () => this.#sql.updateIfPresent.run({ key, value, expiresAt, keepTtl, expected, now }).changes > 0,
    );
  }

  async incr(key: string, ttlMs: number): Promise<{ value: number; ttlMs: number }> {
    checkTtl(ttlMs);
    const now = this.#now();
    return this.#transaction(() => {
      const row = this.#sql.getRow.get({ key, now });
      const current = text(row, 'value');
      // The TTL is set only by the increment that creates the key: a fixed window, not a sliding one.
      const expiresAt = current === null ? now + ttlMs : integer(row, 'expires_at');
      const value = current === null ? 1 : parseCounter(current) + 1;
      this.#sql.upsert.run({ key, value: String(value), expiresAt, keepTtl: 0, now });
      return { value, ttlMs: expiresAt === null ? -1 : expiresAt - now };
    });
  }

  async expire(key: string, ttlMs: number, mode: ExpireMode = 'always'): Promise<boolean> {
    checkTtl(ttlMs);
    const now = this.#now();
    const expiresAt = now + ttlMs;
    return this.#transaction(() => {
      const current = this.#expiryOf(key, now);
      if (current === null) return false;
      // EXPIRE GT: a key without a TTL counts as never expiring, so nothing is greater.
      if (mode === 'gt' && (current.expiresAt === null || expiresAt <= current.expiresAt)) return false;
      if (current.kind === 'string') this.#sql.setStringExpiry.run({ key, expiresAt, now });
      else this.#sql.setHashExpiry.run({ key, expiresAt });
      return true;
    });
  }

  async pttl(key: string): Promise<number | null> {
    const now = this.#now();
    return this.#transaction(() => {
      const current = this.#expiryOf(key, now);
      if (current === null) return null;
      return current.expiresAt === null ? -1 : current.expiresAt - now;
    }, 'DEFERRED');
  }

  async hset(key: string, field: string, value: string): Promise<void> {
    const now = this.#now();
    await this.#transaction(() => {
      this.#sql.purgeExpiredHash.run({ key, now });
      this.#sql.deleteOrphanHashExpiry.run({ key });
      this.#sql.hset.run({ key, field, value });
    });
  }

  async hget(key: string, field: string): Promise<string | null> {
    return this.#retrying(() => text(this.#sql.hget.get({ key, field, now: this.#now() }), 'value'));
  }

  async hdel(key: string, field: string): Promise<boolean> {
    const now = this.#now();
    return this.#transaction(() => {
      const deleted = this.#sql.hdel.run({ key, field, now }).changes > 0;
      // Like Redis, a hash goes away with its last field, and its TTL with it.
      this.#sql.deleteOrphanHashExpiry.run({ key });
      return deleted;
    });
  }

  async hgetall(key: string): Promise<Record<string, string>> {
    const rows = await this.#retrying(() => this.#sql.hgetall.all({ key, now: this.#now() }));
    const fields: Record<string, string> = {};
    for (const row of rows) {
      const field = text(row, 'field');
      const value = text(row, 'value');
      if (field !== null && value !== null) fields[field] = value;
    }
    return fields;
  }

  async publish(channel: string, message: string): Promise<void> {
    this.#pubsub.publish(channel, message);
  }

  async subscribe(channel: string, handler: KvMessageHandler): Promise<() => Promise<void>> {
    const unsubscribe = this.#pubsub.subscribe(channel, handler);
    return async () => unsubscribe();
  }

  async ping(): Promise<boolean> {
    try {
      this.#db.prepare('SELECT 1').get();
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#sweepTimer);
    this.#pubsub.release();
    releaseCheckpoints(this.#db);
    if (this.#db.isOpen) this.#db.close();
  }

  /** Deletes expired rows from disk; returns how many. Runs on a timer; public for tests. */
  sweep(): number {
    const now = this.#now();
    return this.#call(() => this.#inTransaction(
      () =>
        Number(this.#sql.sweepStrings.run({ now }).changes) +
        Number(this.#sql.sweepHashes.run({ now }).changes) +
        Number(this.#sql.sweepHashExpiry.run({ now }).changes),
      'IMMEDIATE',
    ));
  }

  #sweepQuietly(): void {
    try {
      this.sweep();
    } catch {
      // Busy or closing: expired rows are invisible anyway; the next sweep deletes them.
    }
  }

  #expiryOf(key: string, now: number): { kind: 'string' | 'hash'; expiresAt: number | null } | null {
    const row = this.#sql.getRow.get({ key, now });
    if (row !== undefined) return { kind: 'string', expiresAt: integer(row, 'expires_at') };
    if (this.#sql.hashExists.get({ key, now }) === undefined) return null;
    return { kind: 'hash', expiresAt: integer(this.#sql.hashExpiry.get({ key }), 'expires_at') };
  }

  #now(): number {
    return this.#clock.now();
  }

  /**
   * One transaction for a multi-statement method. IMMEDIATE takes the write lock up front, so the
   * reads inside see the state the writes apply to, even with other processes on the file.
   */
  #transaction<T>(work: () => T, mode: 'IMMEDIATE' | 'DEFERRED' = 'IMMEDIATE'): Promise<T> {
    return this.#retrying(() => this.#inTransaction(work, mode));
  }

  #inTransaction<T>(work: () => T, mode: 'IMMEDIATE' | 'DEFERRED'): T {
    this.#db.exec(`BEGIN ${mode}`);
    try {
      const result = work();
      this.#db.exec('COMMIT');
      return result;
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  /**
   * One call: when the lock is taken, the event loop is given back and the call tried again, until
   * `busyTimeoutMs`. A busy attempt changed nothing (SQLite refuses it before it writes), so trying
   * again is safe. Then the store is unavailable, not broken.
   */
  async #retrying<T>(work: () => T): Promise<T> {
    const deadline = Date.now() + this.#busyTimeoutMs;
    for (let pause = 1; ; pause = Math.min(pause * 2, 25)) {
      try {
        return work();
      } catch (error) {
        if (!isBusy(error)) throw error;
        if (Date.now() >= deadline) throw new StoreUnavailableError('SQLite Kv: database is locked', { cause: error });
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }

  /** The sweep, on its timer: a lock held elsewhere only postpones it (#sweepQuietly). */
  #call<T>(work: () => T): T {
    try {
      return work();
    } catch (error) {
      if (isBusy(error)) throw new StoreUnavailableError('SQLite Kv: database is locked', { cause: error });
      throw error;
    }
  }
}

function isBusy(error: unknown): boolean {
  if (!(error instanceof Error) || !('errcode' in error) || typeof error.errcode !== 'number') return false;
  const primary = error.errcode & 0xff;
  return primary === 5 /* SQLITE_BUSY */ || primary === 6 /* SQLITE_LOCKED */;
}

function text(row: Row, column: string): string | null {
  const value = row?.[column];
  return typeof value === 'string' ? value : null;
}

function integer(row: Row, column: string): number | null {
  const value = row?.[column];
  return typeof value === 'number' ? value : null;
}
