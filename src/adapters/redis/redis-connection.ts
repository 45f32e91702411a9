/**
 * How the Redis Kv connects, and how it fails. The rule: while Redis is unreachable every call
 * rejects quickly with StoreUnavailableError (which HTTP answers with 503 upstream_unavailable)
 * instead of hanging, and the same client recovers by itself when Redis returns.
 *
 * - No offline queue: a command issued while disconnected fails at once. Queuing it would also
 *   replay it after the caller was told it failed, a write nobody expects.
 * - maxRetriesPerRequest 0 and no resending: commands in flight when the connection drops fail at
 *   once, for the same reason; they may or may not have run, which the caller must assume anyway.
 * - commandTimeout: a connected but unresponsive Redis fails a call after this long.
 * - Reconnection with a backoff capped at 1 s, so recovery is noticed within a second.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { StoreUnavailableError } from '../../ports/errors.ts';

export type RedisClient = Redis | Cluster;

export interface RedisConnectOptions {
  /** Prepended to every key and pub/sub channel. Must not contain '{' (it would break hash tags). */
  readonly keyPrefix?: string;
  /** A call fails with StoreUnavailableError after this long without a reply. Default 1500 ms. */
  readonly commandTimeoutMs?: number;
}

const CONNECT_TIMEOUT_MS = 2000;

const reconnectDelay = (attempt: number): number => Math.min(50 * 2 ** attempt, 1000);

/**
 * `redis://host:port[/db]` (also rediss://, with user:password@), `redis-cluster://h:p,h:p`, or
 * `redis-sentinel://h:p,h:p/<master name>[/db]` (Sentinel finds the master; on failover the client
 * asks again and reconnects to the new one).
 */
export function createClient(url: string, options: RedisConnectOptions): RedisClient {
  const perConnection: RedisOptions = {
    // With auto-pipelining a command waits for the pipeline ahead of it, so against a hung Redis a
    // call can take up to twice this: 900 ms keeps every answer inside the 2 s the API promises.
    commandTimeout: options.commandTimeoutMs ?? 900,
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    enableAutoPipelining: true,
  };
  const single: RedisOptions = {
    ...perConnection,
    keyPrefix: options.keyPrefix ?? '',
    enableOfflineQueue: false,
    retryStrategy: reconnectDelay,
  };
  const client = url.startsWith('redis-cluster://')
    ? new Cluster(clusterNodes(url, 'redis-cluster://'), clusterOptions(url, options, perConnection))
    : url.startsWith('redis-sentinel://')
      ? new Redis({ ...single, ...sentinelOptions(url) })
      : new Redis(url, single);
  // Every failure reaches the caller of the failing command (and ping() for /readyz); without a
  // listener ioredis would print each reconnection attempt's error to the console.
  client.on('error', () => {});
  return client;
}

function clusterNodes(url: string, scheme: string): { host: string; port: number }[] {
  const hosts = url.slice(scheme.length).replace(/^[^@]*@/, '').replace(/\/.*$/, '');
  return hosts.split(',').map((hostPort) => {
    const parsed = new URL(`redis://${hostPort}`);
    return { host: parsed.hostname, port: Number(parsed.port || 6379) };
  });
}

function clusterOptions(url: string, options: RedisConnectOptions, perConnection: RedisOptions): ClusterOptions {
  return {
    keyPrefix: options.keyPrefix ?? '',
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    clusterRetryStrategy: reconnectDelay,
    // By default a lost node is only replaced after a MOVED; a node that restarts with its slots
    // (or is briefly unreachable) would otherwise stay unusable.
    clusterNodeRetryStrategy: reconnectDelay,
    // A command to a node whose connection is closed is retried maxRedirections (16) times this far
    // apart before it fails: 16 × 50 ms keeps that within the fail-fast budget.
    retryDelayOnFailover: 50,
    redisOptions: { ...perConnection, ...clusterCredentials(url) },
  };
}

/** `redis-sentinel://[user:pass@]h:p,h:p/<master>[/db]`: credentials are the master's, not the sentinels'. */
function sentinelOptions(url: string): RedisOptions {
  const [name = '', db] = url.slice('redis-sentinel://'.length).replace(/^[^@]*@/, '').split('/').slice(1);
  if (name === '' || (db !== undefined && !/^\d+$/.test(db))) {
    throw new Error('a Sentinel store URL is redis-sentinel://host:port[,host:port]/<master name>[/db]');
  }
  return {
    sentinels: clusterNodes(url, 'redis-sentinel://'),
    name: decodeURIComponent(name),
    db: db === undefined ? 0 : Number(db),
    ...clusterCredentials(url),
    // While no sentinel answers, retry as often as a lost connection is retried.
    sentinelRetryStrategy: reconnectDelay,
  };
}

/** `user:password@` or `password@` before the host list, URL-encoded as in redis:// URLs. */
function clusterCredentials(url: string): { username?: string; password?: string } {
  const userinfo = /^redis-(?:cluster|sentinel):\/\/([^@/]*)@/.exec(url)?.[1];
  if (userinfo === undefined) return {};
  const decode = (part: string) => (part === '' ? undefined : decodeURIComponent(part));
  const colon = userinfo.indexOf(':');
  if (colon === -1) return { password: decode(userinfo) };
  return { username: decode(userinfo.slice(0, colon)), password: decode(userinfo.slice(colon + 1)) };
}

/**
 * Resolves once the first connection attempt has settled, successful or not. Without an offline
 * queue, commands sent before 'ready' would fail; after a failed attempt they should fail, quickly.
 */
export function firstAttempt(client: RedisClient): Promise<void> {
  return new Promise((resolve) => {
    const settle = () => {
      clearTimeout(timer);
      for (const event of ['ready', 'error', 'end']) client.off(event, settle);
      resolve();
    };
    const timer = setTimeout(settle, CONNECT_TIMEOUT_MS + 500);
    for (const event of ['ready', 'error', 'end']) client.once(event, settle);
  });
}

/**
 * Anything that is not a reply from Redis (timeout, closed connection, refused connect, offline)
 * means the store did not answer; so do replies about a server that cannot serve yet. Other
 * replies (WRONGTYPE, syntax) are bugs and pass through unchanged.
 */
export function toStoreError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const isReply = error.name === 'ReplyError';
  // OOM: a full Redis under `noeviction` refuses writes; that is an outage, not a bug.
  if (isReply && !/^(LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|BUSY|OOM)\b/.test(error.message)) return error;
  return new StoreUnavailableError(`Redis Kv: ${error.message}`, { cause: error });
}

const rethrowAsStoreError = (error: unknown): never => {
  throw toStoreError(error);
};

/**
 * Runs one command; a failure to get an answer becomes StoreUnavailableError. Not an async
 * function: chaining onto the command's own promise saves the extra promise and microtask turns of
 * an `await` on the validation path.
 */
export function attempt<T>(command: () => Promise<T>): Promise<T> {
  try {
    return command().catch(rethrowAsStoreError);
  } catch (error) {
    return Promise.reject(toStoreError(error));
  }
}

/** A second connection with the same options (for subscriber mode). */
export function duplicate(client: RedisClient): RedisClient {
  const copy: RedisClient = client instanceof Cluster ? client.duplicate() : client.duplicate();
  copy.on('error', () => {});
  return copy;
}
