/**
 * Redis over TLS, with certificate verification, against private TLS-only redis-servers signed by a
 * throwaway CA: one Redis (`rediss://`), a Redis Cluster (`rediss-cluster://`) and Sentinel
 * (`rediss-sentinel://`). Trusting the CA (store_tls_ca) connects; without it the client refuses
 * the certificate at once, with a message that says so, instead of retrying forever.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { RedisKv } from '../../src/adapters/redis/redis-kv.ts';
import { redisTlsArgs, startRedisCluster, type RedisCluster } from '../../scripts/redis-cluster.ts';
import { freePort, skipUnlessRedisServer } from '../support/processes.ts';
import { call, startTestServer } from '../support/server.ts';
import { createTestPki, skipUnlessOpenssl, type TestPki } from '../support/tls.ts';

const NOT_TRUSTED = /TLS certificate is not trusted \(self-signed certificate in certificate chain\).*store_tls_ca/;
const MASTER_NAME = 'lktls';

describe('Redis over TLS', { skip: skipUnlessRedisServer() || skipUnlessOpenssl() }, () => {
  let pki: TestPki;
  let ca: string;
  const children: ChildProcess[] = [];

  /** A TLS-only redis-server (or sentinel, with a config file first) answering PING over TLS. */
  const startTlsRedis = async (port: number, args: string[]): Promise<void> => {
    const child = spawn('redis-server', [...args, ...redisTlsArgs(pki, port), '--bind', '127.0.0.1', '--loglevel', 'warning'], { stdio: 'ignore' });
    children.push(child);
    const deadline = Date.now() + 10_000;
    const ping = () => spawnSync('redis-cli', ['--tls', '--cacert', pki.caFile, '-h', '127.0.0.1', '-p', String(port), 'PING'], { encoding: 'utf8' });
    while (!ping().stdout.includes('PONG')) {
      if (child.exitCode !== null || Date.now() > deadline) assert.fail(`TLS redis-server on ${port} did not answer`);
      await sleep(50);
    }
  };

  /** A round trip through a plain command and a Lua script (kvCompareAndSet). */
  const roundTrip = async (kv: RedisKv, key: string) => {
    assert.equal(await kv.set(key, 'one', { ttlMs: 60_000 }), true);
    assert.equal(await kv.get(key), 'one');
    assert.equal(await kv.compareAndSet(key, 'one', 'two', { keepTtl: true }), true);
    assert.equal(await kv.get(key), 'two');
    assert.equal(await kv.ping(), true);
  };

  /** Connecting without the CA fails quickly with the reason, and does not leave a client retrying. */
  const refusedWithoutCa = async (url: string) => {
    const started = Date.now();
    await assert.rejects(RedisKv.connect(url), NOT_TRUSTED);
    assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms to refuse`);
  };

  before(() => {
    pki = createTestPki();
    ca = readFileSync(pki.caFile, 'utf8');
  });

  after(() => {
    for (const child of children) child.kill('SIGKILL');
    pki.remove();
  });

  describe('one Redis (rediss://)', () => {
    let url = '';
    before(async () => {
      const port = await freePort();
      await startTlsRedis(port, ['--save', '', '--appendonly', 'no']);
      url = `rediss://127.0.0.1:${port}`;
    });

    it('connects when the CA is trusted', async () => {
      const kv = await RedisKv.connect(url, { tlsCa: ca, keyPrefix: 'tls:' });
      try {
        await roundTrip(kv, 'single');
      } finally {
        await kv.close();
      }
    });

    it('refuses a certificate from an unknown CA, at once and saying why', () => refusedWithoutCa(url));

    it('latchkey does not start with a store whose certificate it does not trust', async () => {
      await assert.rejects(startTestServer({ store: url }), NOT_TRUSTED);
    });
  });

  describe('Redis Cluster (rediss-cluster://, 3 masters)', () => {
    let cluster: RedisCluster | undefined;
    before(async () => {
      cluster = await startRedisCluster({ masters: 3, replicas: 0, tls: pki });
    });
    after(() => cluster?.stop());

    it('is a rediss-cluster:// URL that the Kv uses, with keys on every master', async () => {
      assert.ok(cluster);
      assert.match(cluster.storeUrl, /^rediss-cluster:\/\/127\.0\.0\.1:\d+,/);
      const kv = await RedisKv.connect(cluster.storeUrl, { tlsCa: ca });
      try {
        // Keys in different slots, so more than one node's TLS connection is used.
        for (const key of ['a', 'b', 'c', 'd', 'e']) await roundTrip(kv, `{${key}}k`);
      } finally {
        await kv.close();
      }
    });

    it('refuses a certificate from an unknown CA, at once and saying why', async () => {
      assert.ok(cluster);
      await refusedWithoutCa(cluster.storeUrl);
    });

    it('latchkey logs in and validates the session over it', async () => {
      assert.ok(cluster);
      const server = await startTestServer({ store: cluster.storeUrl, store_tls_ca: pki.caFile });
      try {
        const registered = await call(server, 'POST', '/v1/user/register', { username: 'tls', password: 'correct horse' });
        assert.equal(registered.status, 201, JSON.stringify(registered.body));
        const device = { device_id: 'd1', device_name: 'd1', device_model: 'm1' };
        const login = await call(server, 'POST', '/v1/user/login', { username: 'tls', password: 'correct horse', flag: 1, device });
        assert.equal(login.status, 200, JSON.stringify(login.body));
        const current = await call(server, 'GET', '/v1/user/current', undefined, login.body.token);
        assert.equal(current.status, 200);
        assert.equal(current.body.session.sid, login.body.sid);
        assert.equal((await call(server, 'GET', '/readyz')).status, 200);
      } finally {
        await server.stop();
      }
    });
  });

  describe('Redis Sentinel (rediss-sentinel://)', () => {
    let url = '';
    before(async () => {
      const [masterPort, sentinelPort] = [await freePort(), await freePort()];
      await startTlsRedis(masterPort, ['--save', '', '--appendonly', 'no']);
      // Sentinel rewrites its config file; tls-replication makes it reach the master over TLS.
      const conf = join(pki.dir, 'sentinel.conf');
      writeFileSync(conf, `dir ${pki.dir}\nsentinel monitor ${MASTER_NAME} 127.0.0.1 ${masterPort} 1\n`);
      await startTlsRedis(sentinelPort, [conf, '--sentinel']);
      url = `rediss-sentinel://127.0.0.1:${sentinelPort}/${MASTER_NAME}`;
    });

    it('finds the master through the sentinel, both over TLS', async () => {
      const kv = await RedisKv.connect(url, { tlsCa: ca });
      try {
        await roundTrip(kv, 'sentinel');
      } finally {
        await kv.close();
      }
    });

    it('refuses a certificate from an unknown CA, at once and saying why', () => refusedWithoutCa(url));
  });
});
