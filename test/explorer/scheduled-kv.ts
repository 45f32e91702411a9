/**
 * A Kv whose every call is a scheduling point (docs/design.md §3.3): the call registers itself as pending
 * and waits until the scheduler picks it; then it runs on the real store and settles. Because the
 * underlying MemoryKv does all of a call's work synchronously, a picked call is one atomic step.
 */
import type { ExpireMode, Kv, KvMessageHandler, SetOptions } from '../../src/ports/kv.ts';

/**
 * What a call touches, for the explorer's reduction (scheduler.ts): two calls conflict when they
 * touch the same resource (a key, or a key's hash field) and at least one of them writes it.
 */
export interface Access {
  readonly resource: string;
  /** A hash field; absent for the whole key (a string key, or hgetall). */
  readonly field?: string;
  readonly write: boolean;
}

export interface PendingCall {
  /** The protocol that made the call. */
  readonly protocol: string;
  /** The protocol's n-th scheduled call: the same call in every replay of a prefix. */
  readonly id: string;
  readonly footprint: readonly Access[];
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

  /** The calls waiting, in the order choices index them. */
  list(): readonly PendingCall[] {
    return this.#calls;
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

/**
 * Work that travels with a protocol's next scheduled call and takes effect in the same step, just
 * before it (e.g. calls to another service the explorer does not schedule on their own).
 */
export interface SameStepWork {
  readonly label: string;
  readonly footprint: readonly Access[];
  run(): void;
}

/** One protocol's view of the store: same data as every other protocol, calls gated by the queue. */
export class ScheduledKv implements Kv {
  readonly #store: Kv;
  readonly #protocol: string;
  readonly #rank: number;
  readonly #pending: PendingCalls;
  #calls = 0;
  #sameStepWork: (() => SameStepWork | null) | null = null;

  constructor(store: Kv, protocol: string, rank: number, pending: PendingCalls) {
    this.#store = store;
    this.#protocol = protocol;
    this.#rank = rank;
    this.#pending = pending;
  }

  get(key: string): Promise<string | null> {
    return this.#call(`get ${key}`, () => this.#store.get(key), reads(key));
  }

  set(key: string, value: string, options?: SetOptions): Promise<boolean> {
    const flags = [options?.nx ? 'nx' : '', options?.xx ? 'xx' : ''].filter(Boolean).join(' ');
    return this.#call(`set ${key} ${short(value)} ${flags}`.trim(), () => this.#store.set(key, value, options), writes(key));
  }

  swap(key: string, value: string, options?: Pick<SetOptions, 'ttlMs'>): Promise<string | null> {
    return this.#call(`swap ${key} ${short(value)}`, () => this.#store.swap(key, value, options), writes(key));
  }

  getdel(key: string): Promise<string | null> {
    return this.#call(`getdel ${key}`, () => this.#store.getdel(key), writes(key));
  }

  del(key: string): Promise<boolean> {
    return this.#call(`del ${key}`, () => this.#store.del(key), writes(key));
  }

  compareAndDelete(key: string, expected: string): Promise<boolean> {
    return this.#call(`compareAndDelete ${key} if ${short(expected)}`, () => this.#store.compareAndDelete(key, expected), writes(key));
  }

  compareAndSet(
    key: string,
    expected: string,
    value: string,
    options?: Pick<SetOptions, 'ttlMs' | 'keepTtl'>,
  ): Promise<boolean> {
    return this.#call(`compareAndSet ${key} if ${short(expected)} to ${short(value)}`, () =>
      this.#store.compareAndSet(key, expected, value, options), writes(key),
    );
  }

  incr(key: string, ttlMs: number): Promise<{ value: number; ttlMs: number }> {
    return this.#call(`incr ${key}`, () => this.#store.incr(key, ttlMs), writes(key));
  }

  expire(key: string, ttlMs: number, mode?: ExpireMode): Promise<boolean> {
    return this.#call(`expire ${key}`, () => this.#store.expire(key, ttlMs, mode), writes(key));
  }

  pttl(key: string): Promise<number | null> {
    return this.#call(`pttl ${key}`, () => this.#store.pttl(key), reads(key));
  }

  hset(key: string, field: string, value: string): Promise<void> {
    return this.#call(`hset ${key} ${field}`, () => this.#store.hset(key, field, value), [{ resource: key, field, write: true }]);
  }

  hget(key: string, field: string): Promise<string | null> {
    return this.#call(`hget ${key} ${field}`, () => this.#store.hget(key, field), [{ resource: key, field, write: false }]);
  }

  hdel(key: string, field: string): Promise<boolean> {
    return this.#call(`hdel ${key} ${field}`, () => this.#store.hdel(key, field), [{ resource: key, field, write: true }]);
  }

  hgetall(key: string): Promise<Record<string, string>> {
    return this.#call(`hgetall ${key}`, () => this.#store.hgetall(key), reads(key));
  }

  publish(channel: string, message: string): Promise<void> {
    return this.#call(`publish ${channel}`, () => this.#store.publish(channel, message), writes(`channel:${channel}`));
  }

  subscribe(channel: string, handler: KvMessageHandler): Promise<() => Promise<void>> {
    return this.#call(`subscribe ${channel}`, () => this.#store.subscribe(channel, handler), writes(`channel:${channel}`));
  }

  ping(): Promise<boolean> {
    return this.#call('ping', () => this.#store.ping(), []);
  }

  close(): Promise<void> {
    return this.#call('close', () => this.#store.close(), writes('*'));
  }

  /** Asked at every call: work to run in the same step, just before the call (null: none). */
  attachToEachCall(work: () => SameStepWork | null): void {
    this.#sameStepWork = work;
  }

  /**
   * Schedules something other than a store call (a call to another service, such as the IM
   * server's double) as one more choice point of this protocol.
   */
  schedule<T>(label: string, footprint: readonly Access[], operation: () => Promise<T>): Promise<T> {
    return this.#call(label, operation, footprint);
  }

  #call<T>(label: string, operation: () => Promise<T>, footprint: readonly Access[]): Promise<T> {
    const work = this.#sameStepWork?.() ?? null;
    return new Promise<T>((resolve, reject) => {
      this.#pending.add({
        protocol: this.#protocol,
        id: `${this.#protocol}#${this.#calls++}`,
        footprint: work === null ? footprint : [...footprint, ...work.footprint],
        rank: this.#rank,
        label: work === null ? label : `${work.label}, then ${label}`,
        run: () => {
          work?.run();
          operation().then(resolve, reject);
        },
      });
    });
  }
}

const reads = (key: string): Access[] => [{ resource: key, write: false }];
const writes = (key: string): Access[] => [{ resource: key, write: true }];

/** Session records are long JSON; sids and statuses are what make a trace readable. */
function short(value: string): string {
  return value.length > 60 ? `${value.slice(0, 20)}…` : value;
}
