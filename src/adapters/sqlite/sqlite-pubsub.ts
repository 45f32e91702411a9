/**
 * Pub/sub for SQLite Kvs: one in-process bus per database file, so two SqliteKv instances on the
 * same file in one process hear each other. Other processes on the file hear nothing: SQLite has no
 * notifications, and cross-process wake-ups are what the Redis adapter is for.
 */
import { resolve } from 'node:path';
import { LocalPubSub } from '../memory/local-pubsub.ts';

export interface SharedPubSub {
  publish(channel: string, message: string): void;
  subscribe(channel: string, handler: (message: string) => void): () => void;
  /** Drops this holder's subscriptions; the bus goes away with its last holder. */
  release(): void;
}

const buses = new Map<string, { bus: LocalPubSub; holders: number }>();

export function acquirePubSub(path: string): SharedPubSub {
  // Every ':memory:' database is a separate database, so it gets a bus of its own.
  const file = path === ':memory:' ? null : resolve(path);
  const entry = (file === null ? undefined : buses.get(file)) ?? { bus: new LocalPubSub(), holders: 0 };
  if (file !== null) buses.set(file, entry);
  entry.holders += 1;

  const mine = new Set<() => void>();
  let released = false;
  return {
    publish: (channel, message) => entry.bus.publish(channel, message),
    subscribe(channel, handler) {
      const unsubscribe = entry.bus.subscribe(channel, handler);
      const end = () => {
        mine.delete(end);
        unsubscribe();
      };
      mine.add(end);
      return end;
    },
    release() {
      if (released) return;
      released = true;
      for (const end of [...mine]) end();
      entry.holders -= 1;
      if (entry.holders === 0 && file !== null && buses.get(file) === entry) buses.delete(file);
    },
  };
}
