/**
 * store_min_replicas (src/adapters/redis/replication.ts): a GETDEL that took something — a
 * logout's end of a session, an SSO login state consumed — is reported done only once a replica has
 * it. With the replica stopped it fails with StoreUnavailableError (503, outcome unknown) within
 * the command budget, never a success a failover could undo.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { RedisKv } from '../../src/adapters/redis/redis-kv.ts';
import { StoreUnavailableError } from '../../src/ports/errors.ts';
import { freePort, skipUnlessRedisServer, startRedisServer, type RedisServerProcess } from '../support/processes.ts';
import { redisCli, redisClusterAvailable, startRedisCluster, type RedisCluster } from '../../scripts/redis-cluster.ts';

/** Replicas of the server on `port` that finished their initial sync (state=online). */
async function connectedReplicas(port: number): Promise<number> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
  try {
    await client.connect();
    return (await client.info('replication')).split('\n').filter((line) => /^slave\d+:.*state=online/.test(line)).length;
  } finally {
    client.disconnect();
  }
}

async function untilReplicated(port: number): Promise<void> {
  for (let i = 0; (await connectedReplicas(port)) < 1; i++) {
    if (i > 150) throw new Error(`no replica of ${port} came online`);
    await sleep(100);
  }
}

describe('GETDEL waits for a replica (store_min_replicas = 1)', { skip: skipUnlessRedisServer() }, () => {
  let primary: RedisServerProcess;
  let replica: ReturnType<typeof spawn>;
  let kv: RedisKv;
  /** For the success path: a replica on a machine busy with other suites can take long to ack. */
  let patient: RedisKv;

  before(async () => {
    primary = await startRedisServer();
    const port = await freePort();
    replica = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning',
      '--replicaof', '127.0.0.1', String(primary.port),
    ], { stdio: 'ignore' });
    await untilReplicated(primary.port);
    kv = await RedisKv.connect(primary.url, { minReplicas: 1 });
    patient = await RedisKv.connect(primary.url, { minReplicas: 1, replicaWaitMs: 2500, commandTimeoutMs: 4000 });
  });

  after(async () => {
    await kv?.close();
    await patient?.close();
    replica?.kill('SIGCONT');
    replica?.kill('SIGKILL');
    await primary?.stop();
  });

  it('returns what it took once the replica has the delete; a miss does not wait', async () => {
    await patient.set('k1', 'v1');
    assert.equal(await patient.getdel('k1'), 'v1');
    assert.equal(await patient.getdel('k1'), null);
  });

  it('fails with StoreUnavailableError within a second when the replica does not answer, and works again after', async () => {
    await kv.set('k2', 'v2');
    replica.kill('SIGSTOP');
    try {
      const started = performance.now();
      await assert.rejects(kv.getdel('k2'), StoreUnavailableError);
      assert.ok(performance.now() - started < 1000, `took ${Math.round(performance.now() - started)} ms`);
    } finally {
      replica.kill('SIGCONT');
    }
    await patient.set('k3', 'v3');
    assert.equal(await patient.getdel('k3'), 'v3');
  });

  it('an HSET (a session\'s index entry) waits for the replica too, and fails when it does not answer', async () => {
    await patient.hset('h1', 'f', 'v');
    assert.equal(await patient.hget('h1', 'f'), 'v');
    replica.kill('SIGSTOP');
    try {
      await assert.rejects(kv.hset('h2', 'f', 'v'), StoreUnavailableError);
    } finally {
      replica.kill('SIGCONT');
    }
  });
});

describe('GETDEL waits for a replica on a Redis Cluster', { skip: skipUnlessRedisServer() || (!redisClusterAvailable() && 'no redis-cli') }, () => {
  let cluster: RedisCluster;
  let kv: RedisKv;

  before(async () => {
    cluster = await startRedisCluster({ masters: 3, replicas: 1 });
    for (const port of await cluster.masters()) await untilReplicated(port);
    // A replica on a machine busy with other suites can take longer than the default 500 ms to ack.
    kv = await RedisKv.connect(cluster.storeUrl, { minReplicas: 1, replicaWaitMs: 2500, commandTimeoutMs: 4000 });
  });

  after(async () => {
    await kv?.close();
    await cluster?.stop();
  });

  it('every node of the test cluster loads its full sync from a file of its own', () => {
    // A replica renames the RDB it received to its dbfilename, then loads that file by name: with
    // one file for all, replicas syncing at once loaded each other's masters' data (and, promoted,
    // lacked their own master's older writes), which no test here could tell from a Kv bug.
    const setting = (port: number, name: string) => redisCli(port, 'CONFIG', 'GET', name).split('\n')[1]?.trim();
    const files = cluster.nodes.map((node) => `${setting(node.port, 'dir')}/${setting(node.port, 'dbfilename')}`);
    assert.equal(new Set(files).size, cluster.nodes.length, files.join(' '));
  });

  it('asks the master of each key, wherever its slot lives', async () => {
    // Keys spread over the three masters: a WAIT sent to another node's connection would count
    // nothing written and could not fail; here each one must see its own write replicated.
    for (let i = 0; i < 12; i++) {
      await kv.set(`spread:${i}`, `v${i}`);
      assert.equal(await kv.getdel(`spread:${i}`), `v${i}`);
    }
  });

  it('fails when the replica of the key\'s own master is stopped', async () => {
    await kv.set('owned', 'v');
    const masters = await cluster.masters();
    const owner = masters.find((port) => redisCli(port, 'EXISTS', 'owned').trim() === '1');
    const replicaPort = Number(/slave0:ip=[^,]+,port=(\d+)/.exec(redisCli(owner ?? 0, 'INFO', 'replication'))?.[1]);
    const replica = cluster.nodes.find((node) => node.port === replicaPort);
    assert.ok(owner !== undefined && replica !== undefined, `owner ${owner}, replica ${replicaPort}`);
    replica.process.kill('SIGSTOP');
    try {
      await assert.rejects(kv.getdel('owned'), StoreUnavailableError);
    } finally {
      replica.process.kill('SIGCONT');
    }
  });
});
