/**
 * Kv on Redis 7 / Valkey, single node or Cluster: the production store (docs/design.md §2).
 *
 * Each method is one single-key command or one single-key Lua script (scripts.ts), so it is atomic
 * on the server and never crosses hash slots. Failure behaviour is in redis-connection.ts.
 */
import { Cluster } from 'ioredis';
import type { ExpireMode, Kv, KvMessageHandler, SetOptions } from '../../ports/kv.ts';
import { checkSetOptions, checkTtl } from '../kv-arguments.ts';
import { attempt, createClient, firstConnect, type RedisClient, type RedisConnectOptions } from './redis-connection.ts';
import { quit, RedisSubscriptions } from './redis-subscriptions.ts';
import { ReadBatch } from '../read-batch.ts';
import { clusterReadMany } from './cluster-reads.ts';
import { defineScripts, type CompareAndSetTtl } from './scripts.ts';
import { replicationWait, type ReplicationWait } from './replication.ts';

/** How long a GETDEL waits for its replicas by default (store_min_replicas), within the command timeout. */
const REPLICATION_WAIT_MS = 500;

export class RedisKv implements Kv {
  readonly #client: RedisClient;
  readonly #subscriptions: RedisSubscriptions;
  /** ioredis prefixes keys, but not pub/sub channels; channels get the prefix here. */
  readonly #channelPrefix: string;
  /**
   * The reads of one event-loop turn go out together (read-batch.ts): one MGET on a single node;
   * on a Cluster, which refuses cross-slot MGETs, one read script per master (cluster-reads.ts).
   */
  readonly #reads: { get(key: string): Promise<string | null> };
  /** With store_min_replicas: a GETDEL that took something returns once replicas have it. */
  readonly #waitReplicas: ReplicationWait | null;

  /**
   * Resolves once the first connection attempt has settled, even if it failed: a Kv created while
   * Redis is down answers StoreUnavailableError (and ping() false) until Redis is reachable, then
   * recovers by itself. Check ping() to refuse to start without Redis. A TLS certificate that is not
   * trusted rejects instead (firstConnect in redis-connection.ts).
   */
  static async connect(url: string, options: RedisConnectOptions = {}): Promise<RedisKv> {
    const client = createClient(url, options);
    defineScripts(client);
    await firstConnect(client, url, options);
    const minReplicas = options.minReplicas ?? 0;
    const waitReplicas = minReplicas === 0 ? null : replicationWait(client, minReplicas, options.replicaWaitMs ?? REPLICATION_WAIT_MS, options.keyPrefix ?? '');
    return new RedisKv(client, options.keyPrefix ?? '', waitReplicas);
  }

  private constructor(client: RedisClient, keyPrefix: string, waitReplicas: ReplicationWait | null) {
    this.#client = client;
    this.#waitReplicas = waitReplicas;
    this.#channelPrefix = keyPrefix;
    this.#subscriptions = new RedisSubscriptions(client);
    this.#reads = client instanceof Cluster
      ? new ReadBatch(clusterReadMany(client, keyPrefix))
      : new ReadBatch((keys) => attempt(() => client.mget([...keys])));
  }

  // Not async: the validation path's read returns the batch's promise without wrapping it again.
  get(key: string): Promise<string | null> {
    return this.#reads.get(key);
  }

  async set(key: string, value: string, options: SetOptions = {}): Promise<boolean> {
    checkSetOptions(options);
    const args: (string | number)[] = [key, value];
    if (options.ttlMs !== undefined) args.push('PX', options.ttlMs);
    if (options.keepTtl) args.push('KEEPTTL');
    if (options.nx) args.push('NX');
    if (options.xx) args.push('XX');
    // NX/XX that did not write reply nil.
    return (await attempt(() => this.#client.call('set', args))) === 'OK';
  }

  async swap(key: string, value: string, options: Pick<SetOptions, 'ttlMs'> = {}): Promise<string | null> {
    const { ttlMs } = options;
    if (ttlMs === undefined) return attempt(() => this.#client.set(key, value, 'GET'));
    checkTtl(ttlMs);
    return attempt(() => this.#client.set(key, value, 'PX', ttlMs, 'GET'));
  }

  async getdel(key: string): Promise<string | null> {
    const taken = await attempt(() => this.#client.getdel(key));
    // Nothing taken, nothing written: no replica has anything to wait for.
    const waitReplicas = this.#waitReplicas;
    if (taken !== null && waitReplicas !== null) await attempt(() => waitReplicas(key));
    return taken;
  }

  async del(key: string): Promise<boolean> {
    return (await attempt(() => this.#client.del(key))) > 0;
  }

  async compareAndDelete(key: string, expected: string): Promise<boolean> {
    return (await attempt(() => this.#client.kvCompareAndDelete(key, expected))) === 1;
  }

  async compareAndSet(
    key: string,
    expected: string,
    value: string,
    options: Pick<SetOptions, 'ttlMs' | 'keepTtl'> = {},
  ): Promise<boolean> {
    checkSetOptions(options);
    const ttl: CompareAndSetTtl =
      options.keepTtl ? ['keepttl'] : options.ttlMs !== undefined ? ['px', options.ttlMs] : ['persist'];
    return (await attempt(() => this.#client.kvCompareAndSet(key, expected, value, ...ttl))) === 1;
  }

  async incr(key: string, ttlMs: number): Promise<{ value: number; ttlMs: number }> {
    checkTtl(ttlMs);
    const [value, remaining] = await attempt(() => this.#client.kvIncrWithExpiry(key, ttlMs));
    return { value, ttlMs: remaining };
  }

  async expire(key: string, ttlMs: number, mode: ExpireMode = 'always'): Promise<boolean> {
    checkTtl(ttlMs);
    const command = () =>
      mode === 'gt' ? this.#client.pexpire(key, ttlMs, 'GT') : this.#client.pexpire(key, ttlMs);
    return (await attempt(command)) === 1;
  }

  async pttl(key: string): Promise<number | null> {
    const remaining = await attempt(() => this.#client.pttl(key));
    // PTTL answers -2 for a missing key and -1 for a key without TTL.
    return remaining === -2 ? null : remaining;
  }

  async hset(key: string, field: string, value: string): Promise<void> {
    await attempt(() => this.#client.hset(key, field, value));
    // A session's index entry is what revoke-all and a ban sweep find it by: lost in a failover
    // while its record survived, the session would outlive both. With store_min_replicas the login
    // is answered only once a replica has the entry.
    const waitReplicas = this.#waitReplicas;
    if (waitReplicas !== null) await attempt(() => waitReplicas(key));
  }

  async hget(key: string, field: string): Promise<string | null> {
    return attempt(() => this.#client.hget(key, field));
  }

  async hdel(key: string, field: string): Promise<boolean> {
    return (await attempt(() => this.#client.hdel(key, field))) > 0;
  }

  async hgetall(key: string): Promise<Record<string, string>> {
    return attempt(() => this.#client.hgetall(key));
  }

  async publish(channel: string, message: string): Promise<void> {
    await attempt(() => this.#client.publish(this.#channelPrefix + channel, message));
  }

  async subscribe(channel: string, handler: KvMessageHandler): Promise<() => Promise<void>> {
    return this.#subscriptions.subscribe(this.#channelPrefix + channel, handler);
  }

  async ping(): Promise<boolean> {
    try {
      await this.#client.ping();
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.#subscriptions.close(), quit(this.#client)]);
  }
}
