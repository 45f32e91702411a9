/**
 * RedisKv through Redis Sentinel (`redis-sentinel://host:port/<master>`): it finds the master, and
 * after the master dies and Sentinel promotes the replica it serves again — on its own, without a
 * restart — while calls in between fail with StoreUnavailableError (a 503), never hang. Private
 * redis-servers on free loopback ports: one master, one replica, one sentinel.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { RedisKv } from '../../src/adapters/redis/redis-kv.ts';
import { StoreUnavailableError } from '../../src/ports/errors.ts';
import { freePort, skipUnlessRedisServer } from '../support/processes.ts';

const MASTER_NAME = 'lkmaster';
const FAILOVER_MS = 20_000;

describe('RedisKv through Redis Sentinel', { skip: skipUnlessRedisServer() }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-sentinel-'));
  const children: ChildProcess[] = [];
  let masterPort = 0;
  let replicaPort = 0;
  let sentinelPort = 0;
  let master: ChildProcess;
  let kv: RedisKv | undefined;

  const redisServer = (args: string[]): ChildProcess => {
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    children.push(child);
    return child;
  };
  const untilTrue = async (what: string, limitMs: number, check: () => Promise<boolean>) => {
    const deadline = Date.now() + limitMs;
    while (!(await check().catch(() => false))) {
      if (Date.now() > deadline) assert.fail(`${what} within ${limitMs} ms`);
      await sleep(100);
    }
  };
  const info = async (port: number, section: string): Promise<string> => {
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      await client.connect();
      return await client.info(section);
    } finally {
      client.disconnect();
    }
  };

  before(async () => {
    [masterPort, replicaPort, sentinelPort] = [await freePort(), await freePort(), await freePort()];
    const common = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'];
    master = redisServer(['--port', String(masterPort), ...common]);
    redisServer(['--port', String(replicaPort), ...common, '--replicaof', '127.0.0.1', String(masterPort)]);
    await untilTrue('replica in sync', 10_000, async () => (await info(replicaPort, 'replication')).includes('master_link_status:up'));
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(conf, [
      `port ${sentinelPort}`, 'bind 127.0.0.1', `dir ${dir}`,
      `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${masterPort} 1`,
      `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
      `sentinel failover-timeout ${MASTER_NAME} 10000`,
    ].join('\n'));
    redisServer([conf, '--sentinel', '--loglevel', 'warning']);
    await untilTrue('sentinel knows the replica', 15_000, async () => (await info(sentinelPort, 'sentinel')).includes('slaves=1'));
  });

  after(async () => {
    await kv?.close();
    for (const child of children) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds the master through the sentinel and serves from it', async () => {
    kv = await RedisKv.connect(`redis-sentinel://127.0.0.1:${sentinelPort}/${MASTER_NAME}`, { keyPrefix: 'lk:' });
    assert.equal(await kv.set('k', 'before failover', { ttlMs: 60_000 }), true);
    assert.equal(await kv.get('k'), 'before failover');
    assert.equal(await kv.ping(), true);
  });

  it('after the master dies, serves from the promoted replica without a restart; calls in between fail fast', async () => {
    assert.ok(kv);
    // Replication is asynchronous: make sure the replica has the key before the master goes.
    await untilTrue('key replicated', 5000, async () => (await info(replicaPort, 'keyspace')).includes('keys=1'));
    master.kill('SIGKILL');
    const started = Date.now();
    for (;;) {
      const callStarted = performance.now();
      try {
        if ((await kv.get('k')) === 'before failover' && (await kv.set('after', 'promoted'))) break;
      } catch (error) {
        assert.ok(error instanceof StoreUnavailableError, `unexpected ${String(error)}`);
        assert.ok(performance.now() - callStarted < 2500, `a call took ${Math.round(performance.now() - callStarted)} ms to fail`);
      }
      assert.ok(Date.now() - started < FAILOVER_MS, `no failover within ${FAILOVER_MS} ms`);
      await sleep(200);
    }
    assert.match(await info(replicaPort, 'replication'), /role:master/);
    assert.equal(await kv.get('after'), 'promoted');
  });

  it('a Sentinel URL without a master name is refused', async () => {
    await assert.rejects(RedisKv.connect(`redis-sentinel://127.0.0.1:${sentinelPort}`), /master name/);
  });
});
