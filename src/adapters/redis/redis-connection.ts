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
 * - TLS (rediss://, rediss-cluster://, rediss-sentinel://) always verifies the server certificate,
 *   against Node's CA store or the `tlsCa` given instead. A certificate that is not trusted at
 *   start is a configuration error, not an outage: firstConnect() refuses it instead of retrying.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { StoreUnavailableError } from '../../ports/errors.ts';

export type RedisClient = Redis | Cluster;

export interface RedisConnectOptions {
  /** Prepended to every key and pub/sub channel. Must not contain '{' (it would break hash tags). */
  readonly keyPrefix?: string;
  /** A call fails with StoreUnavailableError after this long without a reply. Default 900 ms. */
  readonly commandTimeoutMs?: number;
  /** PEM certificate(s) trusted instead of Node's CA store on a TLS URL: a private CA. */
  readonly tlsCa?: string;
  /** Replicas that must have a GETDEL before it is reported done (replication.ts). Default 0. */
  readonly minReplicas?: number;
  /** How long a GETDEL waits for them; keep it below commandTimeoutMs. Default 500 ms. */
  readonly replicaWaitMs?: number;
}

const CONNECT_TIMEOUT_MS = 2000;

/**
 * Reads go out at once (batched per event-loop turn by read-batch.ts), not in ioredis' next
 * auto-pipeline, which queued them behind the pipeline in flight (see read-batch.ts). Every flow
 * awaits each Kv call before the next, so a read sent first never overtakes a write of its flow.
 */
const NOT_PIPELINED = ['get', 'mget'];

const reconnectDelay = (attempt: number): number => Math.min(50 * 2 ** attempt, 1000);

const CLUSTER_URL = /^rediss?-cluster:\/\//;
const SENTINEL_URL = /^rediss?-sentinel:\/\//;

/**
 * `redis://host:port[/db]` (with user:password@), `redis-cluster://h:p,h:p`, or
 * `redis-sentinel://h:p,h:p/<master name>[/db]` (Sentinel finds the master; on failover the client
 * asks again and reconnects to the new one). The same with `rediss` in place of `redis` connect
 * over TLS: for Sentinel, to the sentinels and to the data nodes both.
 */
export function createClient(url: string, options: RedisConnectOptions): RedisClient {
  const tls = tlsOptions(url, options);
  const perConnection: RedisOptions = {
    // With auto-pipelining a command waits for the pipeline ahead of it, so against a hung Redis a
    // call can take up to twice this: 900 ms keeps every answer inside the 2 s the API promises.
    commandTimeout: options.commandTimeoutMs ?? 900,
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    enableAutoPipelining: true,
    autoPipeliningIgnoredCommands: NOT_PIPELINED,
    ...(tls && { tls }),
  };
  const single: RedisOptions = {
    ...perConnection,
    keyPrefix: options.keyPrefix ?? '',
    enableOfflineQueue: false,
    retryStrategy: reconnectDelay,
  };
  const client = CLUSTER_URL.test(url)
    ? new Cluster(clusterNodes(url), clusterOptions(url, options, perConnection))
    : SENTINEL_URL.test(url)
      ? new Redis({ ...single, ...sentinelOptions(url, tls) })
      : new Redis(url, single);
  // Every failure reaches the caller of the failing command (and ping() for /readyz); without a
  // listener ioredis would print each reconnection attempt's error to the console.
  client.on('error', () => {});
  return client;
}

/** Verification stays on: an empty object means Node's CA store and its host name check. */
function tlsOptions(url: string, options: RedisConnectOptions): { ca?: string } | undefined {
  if (!url.startsWith('rediss')) return undefined;
  return options.tlsCa === undefined ? {} : { ca: options.tlsCa };
}

/** What follows `scheme://`. */
const afterScheme = (url: string): string => url.slice(url.indexOf('://') + 3);

function clusterNodes(url: string): { host: string; port: number }[] {
  const hosts = afterScheme(url).replace(/^[^@]*@/, '').replace(/\/.*$/, '');
  return hosts.split(',').map((hostPort) => {
    const parsed = new URL(`redis://${hostPort}`);
    return { host: parsed.hostname, port: Number(parsed.port || 6379) };
  });
}

function clusterOptions(url: string, options: RedisConnectOptions, perConnection: RedisOptions): ClusterOptions {
  return {
    keyPrefix: options.keyPrefix ?? '',
    enableOfflineQueue: false,
    // Reads too: a turn's reads go to each master as one script (cluster-reads.ts), and the keys a
    // stale slot map sent to the wrong node are read one by one; sent without a pipeline, each
    // such read cost a write of its own.
    enableAutoPipelining: true,
    clusterRetryStrategy: reconnectDelay,
    // By default a lost node is only replaced after a MOVED; a node that restarts with its slots
    // (or is briefly unreachable) would otherwise stay unusable.
    clusterNodeRetryStrategy: reconnectDelay,
    // A command to a node whose connection is closed is retried maxRedirections (16) times this far
    // apart before it fails: 16 × 50 ms keeps that within the fail-fast budget.
    retryDelayOnFailover: 50,
    redisOptions: { ...perConnection, ...clusterCredentials(url) },
    // ioredis resolves seed host names to addresses before connecting; over TLS the certificate
    // must then be checked against the name in the URL, not the address it resolved to.
    ...(perConnection.tls && { dnsLookup: (host: string, done: (error: null, address: string) => void) => done(null, host) }),
  };
}

/**
 * `redis-sentinel://[user:pass@]h:p,h:p/<master>[/db]`: credentials are the master's, not the
 * sentinels'. `rediss-sentinel://` speaks TLS to the sentinels and to the master they name.
 */
function sentinelOptions(url: string, tls: { ca?: string } | undefined): RedisOptions {
  const [name = '', db] = afterScheme(url).replace(/^[^@]*@/, '').split('/').slice(1);
  if (name === '' || (db !== undefined && !/^\d+$/.test(db))) {
    throw new Error('a Sentinel store URL is redis-sentinel://host:port[,host:port]/<master name>[/db] (rediss-sentinel:// for TLS)');
  }
  return {
    sentinels: clusterNodes(url),
    ...(tls && { sentinelTLS: tls, enableTLSForSentinelMode: true }),
    name: decodeURIComponent(name),
    db: db === undefined ? 0 : Number(db),
    ...clusterCredentials(url),
    // While no sentinel answers, retry as often as a lost connection is retried.
    sentinelRetryStrategy: reconnectDelay,
  };
}

/** `user:password@` or `password@` before the host list, URL-encoded as in redis:// URLs. */
function clusterCredentials(url: string): { username?: string; password?: string } {
  const userinfo = /^rediss?-(?:cluster|sentinel):\/\/([^@/]*)@/.exec(url)?.[1];
  if (userinfo === undefined) return {};
  const decode = (part: string) => (part === '' ? undefined : decodeURIComponent(part));
  const colon = userinfo.indexOf(':');
  if (colon === -1) return { password: decode(userinfo) };
  return { username: decode(userinfo.slice(0, colon)), password: decode(userinfo.slice(colon + 1)) };
}

/**
 * Resolves once the first connection attempt has settled, successful or not (then with its error).
 * Without an offline queue, commands sent before 'ready' would fail; after a failed attempt they
 * should fail, quickly.
 */
export function firstAttempt(client: RedisClient): Promise<unknown> {
  return new Promise((resolve) => {
    const settle = (error?: unknown) => {
      clearTimeout(timer);
      for (const event of ['ready', 'error', 'end']) client.off(event, settle);
      resolve(error);
    };
    const timer = setTimeout(settle, CONNECT_TIMEOUT_MS + 500);
    for (const event of ['ready', 'error', 'end']) client.once(event, settle);
  });
}

/**
 * The first attempt, for a client that is to serve: Redis being down is an outage the client rides
 * out, but a certificate it does not trust will not fix itself, so that closes the client and
 * rejects with what to do about it.
 */
export async function firstConnect(client: RedisClient, url: string, options: RedisConnectOptions): Promise<void> {
  const error = await firstAttempt(client);
  if (error === undefined) return;
  const tls = tlsOptions(url, options);
  const reason = certificateFailure(error) ?? (tls && (await seedCertificateFailure(url, tls)));
  if (reason === undefined) return;
  client.disconnect();
  throw new StoreUnavailableError(
    `Redis Kv: the Redis server's TLS certificate is not trusted (${reason}); ` +
      'for a private CA set store_tls_ca to its certificate file',
  );
}

/** Node's reason when a TLS handshake failed on the certificate ("self-signed certificate", …). */
function certificateFailure(error: unknown): string | undefined {
  return error instanceof Error && /certificate/i.test(error.message) ? error.message : undefined;
}

/**
 * A Cluster and Sentinel report a failed handshake to a node or a sentinel only as "Connection is
 * closed": one handshake with each seed, as the client makes it, finds the reason.
 */
async function seedCertificateFailure(url: string, tls: { ca?: string }): Promise<string | undefined> {
  const seeds = CLUSTER_URL.test(url) || SENTINEL_URL.test(url) ? clusterNodes(url) : [singleNode(url)];
  const reasons = await Promise.all(seeds.map((seed) => handshakeFailure(seed, tls)));
  return reasons.find((reason) => reason !== undefined);
}

function singleNode(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port || 6379) };
}

function handshakeFailure(seed: { host: string; port: number }, tls: { ca?: string }): Promise<string | undefined> {
  return new Promise((resolve) => {
    const host = seed.host.replace(/^\[(.*)\]$/, '$1');
    const socket = tlsConnect({ ...tls, host, port: seed.port, ...(isIP(host) === 0 && { servername: host }), timeout: CONNECT_TIMEOUT_MS });
    const done = (reason?: string) => {
      socket.destroy();
      resolve(reason);
    };
    socket.once('secureConnect', () => done());
    socket.once('timeout', () => done());
    socket.once('error', (error) => done(certificateFailure(error)));
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
