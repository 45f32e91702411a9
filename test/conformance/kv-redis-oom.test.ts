/**
 * A Redis that is full (`maxmemory` with `noeviction`, the policy docs/deploy.md recommends: an
 * evicted session record would be a silent logout, an evicted counter a weaker rate limit) refuses
 * writes. For latchkey that is an outage — 503 upstream_unavailable — not a bug (500).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { RedisKv } from '../../src/adapters/redis/redis-kv.ts';
import { StoreUnavailableError } from '../../src/ports/errors.ts';
import { freePort, skipUnlessRedisServer } from '../support/processes.ts';

describe('RedisKv on a full Redis (noeviction)', { skip: skipUnlessRedisServer() }, () => {
  let server: ChildProcess | undefined;
  let kv: RedisKv | undefined;
  let filler: Redis | undefined;

  after(async () => {
    filler?.disconnect();
    await kv?.close();
    server?.kill('SIGKILL');
  });

  it('refused writes reject with StoreUnavailableError; reads still answer', async () => {
    const port = await freePort();
    server = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--maxmemory', '4mb', '--maxmemory-policy', 'noeviction',
    ], { stdio: 'ignore' });
    filler = new Redis({ port, host: '127.0.0.1', retryStrategy: (n) => (n > 50 ? null : 100) });
    filler.on('error', () => {});
    // Redis refuses a write once used memory is past maxmemory; a refused big write frees its
    // buffer again, so fill with big values first, then with small ones until even those are refused.
    for (const size of [256 * 1024, 4 * 1024, 64]) {
      const chunk = 'x'.repeat(size);
      for (let i = 0; ; i += 1) {
        try {
          await filler.set(`fill:${size}:${i}`, chunk);
        } catch (error) {
          if (/^OOM/.test((error as Error).message)) break;
          await sleep(100);
        }
        assert.ok(i < 5000, `redis never refused a ${size}-byte write`);
      }
    }
    kv = await RedisKv.connect(`redis://127.0.0.1:${port}`);
    await assert.rejects(kv.set('sess:x', 'record', { nx: true, ttlMs: 60_000 }), StoreUnavailableError);
    await assert.rejects(kv.incr('rl:login:ip', 60_000), StoreUnavailableError);
    assert.equal(await kv.get('sess:x'), null);
  });
});
