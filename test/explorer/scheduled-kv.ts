/**
 * A Kv whose every call is a scheduling point (DESIGN §3.3): the call registers itself as pending
 * and waits until the scheduler picks it; then it runs on the real store and settles. Because the
 * underlying MemoryKv does all of a call's work synchronously, a picked call is one atomic step.
 */
import type { ExpireMode, Kv, KvMessageHandler, SetOptions } from '../../src/ports/kv.ts';

export interface PendingCall {
  /** The protocol that made the call. */
  readonly protocol: string;
  /** The protocol's place in the scenario's list: pending calls are offered in that order. */
  readonly rank: number;
  /** What the call does, e.g. `getdel sess:<sid>`. */
  readonly label: string;
  /** Runs the call on the real store; the caller's promise then settles with its result. */
  run(): void;
}

/**
 * The calls waiting to be scheduled: by protocol rank, then in the order they were made (which is
 * deterministic per run). So the first choice is always the first listed protocol's, and the first
 * interleaving the search takes runs the protocols one after the other.
 */
export class PendingCalls {
  readonly #calls: PendingCall[] = [];

  get size(): number {
    return this.#calls.length;
  }

  labels(): string[] {
    return this.#calls.map((call) => `${call.protocol}: ${call.label}`);
  }

  add(call: PendingCall): void {
    const after = this.#calls.findIndex((pending) => pending.rank > call.rank);
    this.#calls.splice(after === -1 ? this.#calls.length : after, 0, call);
  }

  take(index: number): PendingCall {
    const [call] = this.#calls.splice(index, 1);
    if (call === undefined) throw new Error(`no pending call #${index} (of ${this.#calls.length})`);
    return call;
  }
}

/** One protocol's view of the store: same data as every other protocol, calls gated by the queue. */
export class ScheduledKv implements Kv {
  readonly #store: Kv;
  readonly #protocol: string;
  readonly #rank: number;
  readonly #pending: PendingCalls;

  constructor(store: Kv, protocol: string, rank: number, pending: PendingCalls) {
    this.#store = store;
    this.#protocol = protocol;
    this.#rank = rank;
    this.#pending = pending;
  }

  get(key: string): Promise<string | null> {
    return this.#call(`get ${key}`, () => this.#store.get(key));
  }

  set(key: string, value: string, options?: SetOptions): Promise<boolean> {
    const flags = [options?.nx ? 'nx' : '', options?.xx ? 'xx' : ''].filter(Boolean).join(' ');
    return this.#call(`set ${key} ${short(value)} ${flags}`.trim(), () => this.#store.set(key, value, options));
  }

  swap(key: string, value: string, options?: Pick<SetOptions, 'ttlMs'>): Promise<string | null> {
    return this.#call(`swap ${key} ${short(value)}`, () => this.#store.swap(key, value, options));
  }

  getdel(key: string): Promise<string | null> {
    return this.#call(`getdel ${key}`, () => this.#store.getdel(key));
  }

  del(key: string): Promise<boolean> {
    return this.#call(`del ${key}`, () => this.#store.del(key));
  }

  compareAndDelete(key: string, expected: string): Promise<boolean> {
    return this.#call(`compareAndDelete ${key} if ${short(expected)}`, () => this.#store.compareAndDelete(key, expected));
  }

  compareAndSet(
    key: string,
    expected: string,
    value: string,
    options?: Pick<SetOptions, 'ttlMs' | 'keepTtl'>,
  ): Promise<boolean> {
    return this.#call(`compareAndSet ${key} if ${short(expected)} to ${short(value)}`, () =>
      this.#store.compareAndSet(key, expected, value, options),
    );
  }

  incr(key: string, ttlMs: number): Promise<{ value: number; ttlMs: number }> {
    return this.#call(`incr ${key}`, () => this.#store.incr(key, ttlMs));
  }

  expire(key: string, ttlMs: number, mode?: ExpireMode): Promise<boolean> {
    return this.#call(`expire ${key}`, () => this.#store.expire(key, ttlMs, mode));
  }

  pttl(key: string): Promise<number | null> {
    return this.#call(`pttl ${key}`, () => this.#store.pttl(key));
  }

  hset(key: string, field: string, value: string): Promise<void> {
    return this.#call(`hset ${key} ${field}`, () => this.#store.hset(key, field, value));
  }

  hget(key: string, field: string): Promise<string | null> {
    return this.#call(`hget ${key} ${field}`, () => this.#store.hget(key, field));
  }

  hdel(key: string, field: string): Promise<boolean> {
    return this.#call(`hdel ${key} ${field}`, () => this.#store.hdel(key, field));
  }

  hgetall(key: string): Promise<Record<string, string>> {
    return this.#call(`hgetall ${key}`, () => this.#store.hgetall(key));
  }

  publish(channel: string, message: string): Promise<void> {
    return this.#call(`publish ${channel}`, () => this.#store.publish(channel, message));
  }

  subscribe(channel: string, handler: KvMessageHandler): Promise<() => Promise<void>> {
    return this.#call(`subscribe ${channel}`, () => this.#store.subscribe(channel, handler));
  }

  ping(): Promise<boolean> {
    return this.#call('ping', () => this.#store.ping());
  }

  close(): Promise<void> {
    return this.#call('close', () => this.#store.close());
  }

  #call<T>(label: string, operation: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#pending.add({
        protocol: this.#protocol,
        rank: this.#rank,
        label,
        run: () => {
          operation().then(resolve, reject);
        },
      });
    });
  }
}

/** Session records are long JSON; sids and statuses are what make a trace readable. */
function short(value: string): string {
  return value.length > 60 ? `${value.slice(0, 20)}…` : value;
}
