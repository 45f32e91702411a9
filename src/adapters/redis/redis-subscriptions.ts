/**
 * Pub/sub for the Redis Kv. A connection in subscriber mode can do nothing else, so subscriptions
 * get a second connection, opened on the first subscribe. Several handlers share one SUBSCRIBE per
 * channel. ioredis re-subscribes by itself after a reconnection; messages published meanwhile are
 * lost (Redis pub/sub is fire-and-forget), which is why wake-ups are hints and never state.
 */
import type { KvMessageHandler } from '../../ports/kv.ts';
import { attempt, duplicate, firstAttempt, type RedisClient } from './redis-connection.ts';

interface Subscription {
  readonly handler: KvMessageHandler;
}

interface Channel {
  readonly subscriptions: Set<Subscription>;
  /** Settles when Redis has confirmed the SUBSCRIBE that this channel's first handler sent. */
  readonly active: Promise<unknown>;
}

export class RedisSubscriptions {
  readonly #source: RedisClient;
  readonly #channels = new Map<string, Channel>();
  #connection: Promise<RedisClient> | null = null;

  constructor(source: RedisClient) {
    this.#source = source;
  }

  /** `channel` is the full channel name, prefix included. */
  async subscribe(channel: string, handler: KvMessageHandler): Promise<() => Promise<void>> {
    const connection = await this.#connect();
    const subscription: Subscription = { handler };
    let entry = this.#channels.get(channel);
    if (entry === undefined) {
      entry = { subscriptions: new Set(), active: attempt(() => connection.subscribe(channel)) };
      this.#channels.set(channel, entry);
    }
    const joined = entry;
    joined.subscriptions.add(subscription);
    try {
      await joined.active;
    } catch (error) {
      // Nobody is subscribed: forget the channel so that the next subscribe sends SUBSCRIBE again.
      if (this.#channels.get(channel) === joined) this.#channels.delete(channel);
      throw error;
    }
    let ended = false;
    return async () => {
      if (ended) return;
      ended = true;
      joined.subscriptions.delete(subscription);
      if (joined.subscriptions.size > 0 || this.#channels.get(channel) !== joined) return;
      this.#channels.delete(channel);
      // The handler is already gone, so the subscription has ended for the caller even if Redis is
      // unreachable now; a channel re-subscribed after reconnection only delivers to nobody.
      await connection.unsubscribe(channel).catch(() => {});
    };
  }

  async close(): Promise<void> {
    const connection = this.#connection;
    this.#connection = null;
    this.#channels.clear();
    if (connection) await quit(await connection);
  }

  #connect(): Promise<RedisClient> {
    this.#connection ??= this.#open();
    return this.#connection;
  }

  async #open(): Promise<RedisClient> {
    const connection = duplicate(this.#source);
    connection.on('message', (channel: string, message: string) => this.#deliver(channel, message));
    await firstAttempt(connection);
    return connection;
  }

  /** One microtask per handler: a handler that throws neither stops the others nor the connection. */
  #deliver(channel: string, message: string): void {
    for (const subscription of this.#channels.get(channel)?.subscriptions ?? []) {
      queueMicrotask(() => {
        if (this.#channels.get(channel)?.subscriptions.has(subscription)) subscription.handler(message);
      });
    }
  }
}

/** QUIT fails when disconnected; then only stopping the reconnection loop is left to do. */
export async function quit(client: RedisClient): Promise<void> {
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}
