/**
 * In-process publish/subscribe for the stores that have no server to relay messages (memory,
 * SQLite). It wakes listeners in this process only.
 */
import type { KvMessageHandler } from '../../ports/kv.ts';

interface Subscription {
  readonly handler: KvMessageHandler;
}

export class LocalPubSub {
  readonly #channels = new Map<string, Set<Subscription>>();

  /**
   * Delivery is asynchronous, like a message relayed by Redis: the publisher's own code runs to its
   * next await before any handler. Each handler gets its own microtask so one that throws neither
   * stops the others nor the publisher; the error surfaces as an uncaught exception.
   */
  publish(channel: string, message: string): void {
    for (const subscription of this.#channels.get(channel) ?? []) {
      queueMicrotask(() => {
        // Unsubscribed between publish and delivery: it asked not to hear any more.
        if (this.#channels.get(channel)?.has(subscription)) subscription.handler(message);
      });
    }
  }

  /** Returns the function that ends this subscription (idempotent). */
  subscribe(channel: string, handler: KvMessageHandler): () => void {
    const subscription: Subscription = { handler };
    const subscribers = this.#channels.get(channel) ?? new Set<Subscription>();
    subscribers.add(subscription);
    this.#channels.set(channel, subscribers);
    return () => {
      subscribers.delete(subscription);
      if (subscribers.size === 0 && this.#channels.get(channel) === subscribers) this.#channels.delete(channel);
    };
  }

  clear(): void {
    this.#channels.clear();
  }
}
