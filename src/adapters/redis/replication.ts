/**
 * `store_min_replicas`: a GETDEL that took something (a session ended, an SSO login state
 * consumed) is reported done only once `replicas` replicas have it (Redis WAIT). Redis replicates
 * asynchronously, so without it a write a master acknowledged in its last milliseconds can be
 * missing on the replica that takes over, and a logged-out token would work again.
 *
 * WAIT counts the writes made on the connection it is sent on: on a Cluster it goes to the
 * connection of the key's master.
 */
import { Cluster } from 'ioredis';
import { StoreUnavailableError } from '../../ports/errors.ts';
import type { RedisClient } from './redis-connection.ts';

export type ReplicationWait = (key: string) => Promise<void>;

export function replicationWait(client: RedisClient, replicas: number, timeoutMs: number, keyPrefix: string): ReplicationWait {
  return async (key) => {
    const acknowledged = await connectionOf(client, keyPrefix + key).wait(replicas, timeoutMs);
    if (acknowledged < replicas) {
      throw new StoreUnavailableError(`Redis Kv: the write reached ${acknowledged} of ${replicas} replica(s) within ${timeoutMs} ms`);
    }
  };
}

function connectionOf(client: RedisClient, prefixedKey: string): { wait(replicas: number, timeoutMs: number): Promise<number> } {
  if (!(client instanceof Cluster)) return client;
  return {
    async wait(replicas, timeoutMs) {
      // Any node answers KEYSLOT; the key's master (as this client knows it) then gets the WAIT.
      const slot = Number(await client.cluster('KEYSLOT', prefixedKey));
      const master = client.slots[slot]?.[0];
      const node = client.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === master);
      if (node === undefined) throw new StoreUnavailableError(`Redis Kv: no known master for slot ${slot}`);
      return node.wait(replicas, timeoutMs);
    },
  };
}
