/**
 * A Redis Cluster's batched reads (src/adapters/redis/cluster-reads.ts): the keys of one event-loop
 * turn go to each master as one read script; every key answers its own value, also when the
 * client's slot map is wrong (the script fails on the node and the keys are read one by one).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { clusterReadMany, keySlot } from '../../src/adapters/redis/cluster-reads.ts';
import { RedisKv } from '../../src/adapters/redis/redis-kv.ts';
import { skipUnlessRedisServer } from '../support/processes.ts';
import { redisClusterAvailable, startRedisCluster, type RedisCluster } from '../../scripts/redis-cluster.ts';

const PREFIX = 'lkcr:';

/** Calls of a command on every master since the last CONFIG RESETSTAT. */
async function calls(cluster: RedisCluster, command: string): Promise<number> {
  let total = 0;
  for (const port of await cluster.masters()) {
    const client = new Redis({ port, host: '127.0.0.1' });
    try {
      const line = (await client.info('commandstats')).split('\n').find((l) => l.startsWith(`cmdstat_${command}:`));
      total += Number(/calls=(\d+)/.exec(line ?? '')?.[1] ?? 0);
    } finally {
      client.disconnect();
    }
  }
  return total;
}

async function resetStats(cluster: RedisCluster): Promise<void> {
  for (const port of await cluster.masters()) {
    const client = new Redis({ port, host: '127.0.0.1' });
    await client.config('RESETSTAT').finally(() => client.disconnect());
  }
}

describe('Redis Cluster: one read script per master per event-loop turn', { skip: skipUnlessRedisServer() || !redisClusterAvailable() }, () => {
  let cluster: RedisCluster;
  let kv: RedisKv;
  let client: Cluster;
  const keys = Array.from({ length: 60 }, (_, i) => `read-${i}`);
  const expected = keys.map((_, i) => (i % 4 === 0 ? null : `v${i}`));

  before(async () => {
    cluster = await startRedisCluster({ masters: 3, replicas: 0 });
    kv = await RedisKv.connect(cluster.storeUrl, { keyPrefix: PREFIX });
    await Promise.all(keys.map((key, i) => (expected[i] === null ? null : kv.set(key, `v${i}`))));
    const [seed] = cluster.storeUrl.replace('redis-cluster://', '').split(',');
    const [host = '', port = ''] = (seed ?? '').split(':');
    client = new Cluster([{ host, port: Number(port) }], { keyPrefix: PREFIX });
    await new Promise((resolve) => client.once('ready', resolve));
  });
  after(async () => {
    client?.disconnect();
    await kv?.close();
    await cluster?.stop();
  });

  it('computes the slot of a key as the Cluster does, hash tags included', async () => {
    for (const key of ['sess:abc', 'a{user1}b', '{}x', '{x', 'x}{y}', 'café', 'seen:Zm9v_-', '']) {
      assert.equal(keySlot(key), Number(await client.cluster('KEYSLOT', key)), key);
    }
  });

  it("gets of one turn spread over every master answer each its own key, through one script per master", async () => {
    await resetStats(cluster);
    const values = await Promise.all(keys.map((key) => kv.get(key)));
    assert.deepEqual(values, expected);
    // 60 keys over 3 masters: 3 scripts, each key's GET run inside one of them, none more.
    assert.equal(await calls(cluster, 'get'), keys.length);
    assert.equal(await calls(cluster, 'evalsha') + await calls(cluster, 'eval'), 3);
  });

  it('a master that lost its script cache (SCRIPT FLUSH, as after a restart) is sent the script again', async () => {
    assert.deepEqual(await Promise.all(keys.map((key) => kv.get(key))), expected);
    for (const port of await cluster.masters()) {
      const node = new Redis({ port, host: '127.0.0.1' });
      await node.script('FLUSH').finally(() => node.disconnect());
    }
    await resetStats(cluster);
    assert.deepEqual(await Promise.all(keys.map((key) => kv.get(key))), expected);
    // Each master: the SHA-1 refused (NOSCRIPT), then the script in full; no key read one by one.
    assert.equal(await calls(cluster, 'eval'), 3);
    assert.equal(await calls(cluster, 'get'), keys.length);
    await resetStats(cluster);
    assert.deepEqual(await Promise.all(keys.map((key) => kv.get(key))), expected);
    assert.equal(await calls(cluster, 'evalsha'), 3);
    assert.equal(await calls(cluster, 'eval'), 0);
  });

  it('with a wrong slot map, the keys a node does not serve are read again one by one', async () => {
    const readMany = clusterReadMany(client, PREFIX);
    // Every slot said to be served by one master: the script fails there on the others' keys.
    const real = client.slots;
    const oneNode = real.find((nodes) => nodes.length > 0) ?? [];
    client.slots = real.map(() => oneNode);
    try {
      assert.deepEqual(await readMany(keys), expected);
      // A key alone goes as a plain GET to the node the map names; a MOVED reply is followed.
      for (const [i, key] of keys.slice(0, 8).entries()) assert.deepEqual(await readMany([key]), [expected[i]]);
    } finally {
      client.slots = real;
    }
    assert.deepEqual(await readMany(keys), expected);
  });
});
