/**
 * RedisKv when Redis goes away (docs/design.md §5: 503 upstream_unavailable, never a hang): every call
 * rejects with StoreUnavailableError within 2 s, and the same RedisKv recovers by itself when Redis
 * returns. Runs its own redis-server on a free loopback port, so it can stop and restart it.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { RedisKv } from '../../src/adapters/redis/redis-kv.ts';
import { StoreUnavailableError } from '../../src/ports/errors.ts';
import type { Kv } from '../../src/ports/kv.ts';

const FAIL_FAST_MS = 2000;

function redisServerMissing(): false | string {
  if (spawnSync('redis-server', ['--version']).status === 0) return false;
  const inCi = process.env.CI === 'true' || process.env.CI === '1';
  if (inCi) throw new Error('redis-server is required in CI but is not on PATH');
  const message = 'SKIPPED: redis-server is not on PATH — install it to run the Redis outage tests';
  process.stderr.write(`\n*** ${message} ***\n\n`);
  return message;
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

const servers = new Set<ChildProcess>();
after(() => {
  for (const server of servers) server.kill('SIGKILL');
});

async function startRedis(port: number): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const server = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  servers.add(server);
  server.once('exit', () => servers.delete(server));
  let output = '';
  await new Promise<void>((resolve, reject) => {
    server.stdout?.on('data', (chunk) => {
      output += String(chunk);
      if (output.includes('Ready to accept connections')) resolve();
    });
    server.once('exit', () => reject(new Error(`redis-server on port ${port} exited:\n${output}`)));
  });
  return server;
}

async function stopRedis(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null) return;
  const exited = once(server, 'exit');
  server.kill('SIGTERM');
  await exited;
}

/** Runs `call`, which must reject with StoreUnavailableError, and says how long that took. */
async function timeToFailure(call: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await assert.rejects(call(), StoreUnavailableError);
  return performance.now() - started;
}

async function assertEveryCallFailsFast(kv: Kv): Promise<void> {
  const calls: [string, () => Promise<unknown>][] = [
    ['get', () => kv.get('k')],
    ['set', () => kv.set('k', 'v', { nx: true, ttlMs: 1000 })],
    ['incr (script)', () => kv.incr('n', 1000)],
    ['compareAndSet (script)', () => kv.compareAndSet('k', 'v', 'w', { keepTtl: true })],
    ['hgetall', () => kv.hgetall('h')],
    ['publish', () => kv.publish('c', 'm')],
    ['subscribe', () => kv.subscribe('other-channel', () => {})],
  ];
  for (const [name, call] of calls) {
    const elapsed = await timeToFailure(call);
    assert.ok(elapsed < FAIL_FAST_MS, `${name} took ${Math.round(elapsed)} ms to fail`);
  }
  assert.equal(await kv.ping(), false);
}

/** Polls until a call succeeds; returns how long recovery took. */
async function waitForRecovery(kv: Kv, withinMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    try {
      await kv.get('k');
      return performance.now() - started;
    } catch (error) {
      assert.ok(error instanceof StoreUnavailableError, `unexpected error while recovering: ${error}`);
      if (performance.now() - started > withinMs) assert.fail(`not recovered after ${withinMs} ms`);
      await sleep(100);
    }
  }
}

async function messageArrives(kv: Kv, channel: string, inbox: string[], message: string): Promise<void> {
  await kv.publish(channel, message);
  const deadline = Date.now() + 2000;
  while (!inbox.includes(message)) {
    if (Date.now() > deadline) assert.fail(`message ${message} did not arrive`);
    await sleep(10);
  }
}

describe('RedisKv during a Redis outage', { skip: redisServerMissing() }, () => {
  it('rejects every call within 2 s while Redis is stopped, and recovers with the same instance', async (t) => {
    const port = await freePort();
    let server = await startRedis(port);
    const kv = await RedisKv.connect(`redis://127.0.0.1:${port}`, { keyPrefix: 'outage:' });
    try {
      assert.equal(await kv.set('k', 'before'), true);
      assert.equal(await kv.get('k'), 'before');
      const inbox: string[] = [];
      await kv.subscribe('wake', (m) => inbox.push(m));
      await messageArrives(kv, 'wake', inbox, 'm1');

      await stopRedis(server);
      await assertEveryCallFailsFast(kv);

      server = await startRedis(port);
      t.diagnostic(`recovered ${Math.round(await waitForRecovery(kv, 5000))} ms after the restart`);
      assert.equal(await kv.set('k', 'after'), true);
      assert.equal(await kv.get('k'), 'after');
      const counted = await kv.incr('n', 10_000);
      assert.equal(counted.value, 1);
      // The TTL is read back in the same script; a millisecond boundary inside it reads 9,999.
      assert.ok(counted.ttlMs > 9_900 && counted.ttlMs <= 10_000, `ttl ${counted.ttlMs}`);
      assert.equal(await kv.ping(), true);
      // The subscription made before the outage is back (ioredis re-subscribes on reconnection).
      await waitFor(async () => messageArrives(kv, 'wake', inbox, `m2-${Date.now()}`));
    } finally {
      await kv.close();
      await stopRedis(server);
    }
  });

  it('rejects calls within 2 s when Redis is connected but stops answering, and recovers', async () => {
    const port = await freePort();
    const server = await startRedis(port);
    const kv = await RedisKv.connect(`redis://127.0.0.1:${port}`);
    try {
      assert.equal(await kv.set('k', 'v'), true);
      server.kill('SIGSTOP');
      const elapsed = await timeToFailure(() => kv.get('k'));
      assert.ok(elapsed < FAIL_FAST_MS, `get took ${Math.round(elapsed)} ms to fail`);
      assert.equal(await kv.ping(), false);
      server.kill('SIGCONT');
      await waitForRecovery(kv, 5000);
      assert.equal(await kv.get('k'), 'v');
    } finally {
      server.kill('SIGCONT');
      await kv.close();
      await stopRedis(server);
    }
  });

  it('connect resolves while Redis is down; calls fail fast until it starts, then succeed', async () => {
    const port = await freePort();
    const started = performance.now();
    const kv = await RedisKv.connect(`redis://127.0.0.1:${port}`);
    assert.ok(performance.now() - started < FAIL_FAST_MS, 'connect waited too long for a dead Redis');
    let server: ChildProcess | undefined;
    try {
      const elapsed = await timeToFailure(() => kv.set('k', 'v'));
      assert.ok(elapsed < FAIL_FAST_MS, `set took ${Math.round(elapsed)} ms to fail`);
      server = await startRedis(port);
      await waitForRecovery(kv, 5000);
      assert.equal(await kv.set('k', 'v'), true);
    } finally {
      await kv.close();
      if (server) await stopRedis(server);
    }
  });
});

/** Re-subscription happens just after reconnection; give it a few tries. */
async function waitFor(attempt: () => Promise<void>): Promise<void> {
  for (let tries = 1; ; tries += 1) {
    try {
      return await attempt();
    } catch (error) {
      if (tries >= 3) throw error;
    }
  }
}
