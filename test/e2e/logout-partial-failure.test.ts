/**
 * A logout is never reported done when it was not (docs/deploy.md, "When a store fails"). The
 * GETDEL of the session record is the step that ends a session; the index and slot cleanup after
 * it may fail on its own. Then the answer is 503, yet the token is dead: a 503 from a logout means
 * "outcome unknown, ask again", and asking again answers 200 (ended now) or 401 (already ended).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { parseConfig } from '../../src/config/config.ts';
import { createRuntime, type Runtime } from '../../src/runtime/runtime.ts';
import { buildApp } from '../../src/http/app.ts';
import { createLogger } from '../../src/logger.ts';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { failingOnce } from '../support/failing-kv.ts';
import { call, startTestServer, testDefaults, type TestServer } from '../support/server.ts';
import { skipUnlessRedisServer, startRedisServer, type RedisServerProcess } from '../support/processes.ts';

describe('logout when the store fails part-way', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-logout-'));
  const store = failingOnce(new MemoryKv());
  let runtime: Runtime;
  let app: FastifyInstance;

  const inject = async (method: 'GET' | 'POST', url: string, token?: string, body?: unknown) => {
    const response = await app.inject({ method, url, headers: token === undefined ? {} : { token }, ...(body === undefined ? {} : { payload: body as object }) });
    return { status: response.statusCode, body: response.json() };
  };
  const login = async (flag: number) => {
    const answer = await inject('POST', '/v1/user/login', undefined, { username: 'lena', password: 'partial failure', flag });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return { token: answer.body.token as string, sid: answer.body.sid as string };
  };

  before(async () => {
    const config = parseConfig({ ...testDefaults, data_dir: dataDir });
    const logger = createLogger('silent');
    runtime = await createRuntime(config, logger, { kv: store.kv });
    app = await buildApp(runtime, logger);
    assert.equal((await inject('POST', '/v1/user/register', undefined, { username: 'lena', password: 'partial failure', flag: 1 })).status, 201);
  });

  after(async () => {
    await app.close();
    await runtime.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('GETDEL did not happen: 503, the session is still alive, and a retry ends it', async () => {
    const { token } = await login(1);
    store.failNext('getdel');
    const quit = await inject('POST', '/v1/user/quit', token);
    assert.deepEqual([quit.status, quit.body.status, quit.body.code], [503, 503, 'upstream_unavailable']);
    assert.equal((await inject('GET', '/v1/user/sessions', token)).status, 200);
    assert.equal((await inject('POST', '/v1/user/quit', token)).status, 200);
    assert.equal((await inject('GET', '/v1/user/sessions', token)).status, 401);
  });

  it('GETDEL happened, the index cleanup failed: 503, but the token is dead and lists nowhere', async () => {
    const other = await login(2);
    const { token, sid } = await login(1);
    store.failNext('hdel');
    const quit = await inject('POST', '/v1/user/quit', token);
    assert.deepEqual([quit.status, quit.body.code], [503, 'upstream_unavailable']);
    assert.equal((await inject('GET', '/v1/user/sessions', token)).status, 401);
    // Asking again: 401, "this token is not a session" — the logout the client wanted has happened.
    assert.equal((await inject('POST', '/v1/user/quit', token)).status, 401);
    // The index entry it left behind points at nothing and is not listed.
    const listed = await inject('GET', '/v1/user/sessions', other.token);
    assert.equal(listed.status, 200);
    const sids: string[] = listed.body.map((session: { sid: string }) => session.sid);
    assert.ok(sids.includes(other.sid));
    assert.ok(!sids.includes(sid));
  });
});

describe('logout during a hung Redis (SIGSTOP)', { skip: skipUnlessRedisServer() }, () => {
  let redis: RedisServerProcess;
  let server: TestServer;

  before(async () => {
    redis = await startRedisServer();
    server = await startTestServer({ store: redis.url });
  });

  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  it('answers 503 within 2 s, never 200; once Redis is back, asking again ends the session for good', async () => {
    const registered = await call(server, 'POST', '/v1/user/register', { username: 'hank', password: 'hung redis pw', flag: 1 });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    const token: string = registered.body.token;
    redis.pause();
    try {
      const started = performance.now();
      const quit = await call(server, 'POST', '/v1/user/quit', undefined, token);
      assert.deepEqual([quit.status, quit.body.code], [503, 'upstream_unavailable']);
      assert.ok(performance.now() - started < 2000, `took ${Math.round(performance.now() - started)} ms`);
    } finally {
      redis.resume();
    }
    // The GETDEL sat in the socket and may run when Redis wakes: the outcome was unknown, and was
    // reported so. The client asks again until it gets a definite answer.
    let retried = 0;
    for (;;) {
      retried = (await call(server, 'POST', '/v1/user/quit', undefined, token)).status;
      if (retried !== 503) break;
      await sleep(100);
    }
    assert.ok(retried === 200 || retried === 401, `retry answered ${retried}`);
    assert.equal((await call(server, 'GET', '/v1/user/sessions', undefined, token)).status, 401);
  });
});
