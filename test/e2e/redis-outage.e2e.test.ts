import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { skipUnlessRedisServer, startLatchkey, startRedisServer, type LatchkeyProcess, type RedisServerProcess } from '../support/processes.ts';

/**
 * A latchkey node (its own process) on a private redis-server that the test pauses, kills and
 * restarts. While Redis cannot answer, every call that needs it answers 503 upstream_unavailable
 * quickly — never a hang, never a 500, never a 200 for a logout that did not happen — and the same
 * process serves again once Redis is back.
 */

/** docs/design.md §5: the store is down, the client may retry. */
const FAIL_FAST_MS = 2000;
const RECOVERY_MS = 5000;
const PASSWORD = 'outage password';

interface Timed {
  status: number;
  // The contract is asserted field by field.
  body: any;
  ms: number;
}

/** One request with its duration; a hang becomes a clear failure instead of a test timeout. */
async function timed(node: LatchkeyProcess, method: string, path: string, body?: unknown, token?: string): Promise<Timed> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token !== undefined) headers.token = token;
  const started = performance.now();
  let response: Response;
  try {
    response = await fetch(node.url + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(10_000),
    });
  } catch (error) {
    throw new Error(`${method} ${path} got no answer after ${Math.round(performance.now() - started)} ms: ${(error as Error).message}`);
  }
  const text = await response.text();
  const ms = performance.now() - started;
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text for the failure message
  }
  return { status: response.status, body: parsed, ms };
}

function assertUnavailable(what: string, answer: Timed): void {
  assert.equal(answer.status, 503, `${what}: ${answer.status} ${JSON.stringify(answer.body)}`);
  assert.equal(answer.body.status, 503, what);
  assert.equal(answer.body.code, 'upstream_unavailable', what);
  assert.equal(typeof answer.body.msg, 'string', what);
  assert.ok(answer.ms < FAIL_FAST_MS, `${what} took ${Math.round(answer.ms)} ms (limit ${FAIL_FAST_MS})`);
}

/** Retries `attempt` until it returns true; returns how long that took. */
async function until(limitMs: number, what: string, attempt: () => Promise<boolean>): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await attempt()) return performance.now() - started;
    if (performance.now() - started > limitMs) assert.fail(`${what} did not recover within ${limitMs} ms`);
    await sleep(100);
  }
}

describe('Redis outage: fail fast with 503, recover without a restart', { skip: skipUnlessRedisServer() }, () => {
  let redis: RedisServerProcess | undefined;
  let node: LatchkeyProcess;
  let token = '';
  let users = 0;
  const timings: Record<string, number> = {};

  const register = async () => {
    users += 1;
    return timed(node, 'POST', '/v1/user/register', { username: `outage${users}`, password: PASSWORD, flag: 1 });
  };

  /** The session's token and a Web login both answer 503 fast; timed as `<phase>_current` and `<phase>_login`. */
  async function assertSessionAndLoginUnavailable(phase: 'hung' | 'down'): Promise<void> {
    const current = await timed(node, 'GET', '/v1/user/current', undefined, token);
    assertUnavailable(`GET /v1/user/current (${phase})`, current);
    timings[`${phase}_current`] = current.ms;
    const login = await timed(node, 'POST', '/v1/user/login', { username: 'outage1', password: PASSWORD, flag: 1 });
    assertUnavailable(`POST /v1/user/login (${phase})`, login);
    timings[`${phase}_login`] = login.ms;
  }

  before(async () => {
    redis = await startRedisServer();
    node = await startLatchkey({
      store: redis.url,
      password: { memory_cost: 1024, time_cost: 1 },
      rate_limits: { login: { max: 100_000 }, register: { max: 100_000 } },
    });
    const registered = await register();
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    token = registered.body.token;
    assert.equal((await timed(node, 'GET', '/v1/user/current', undefined, token)).status, 200);
    const login = await timed(node, 'POST', '/v1/user/login', { username: 'outage1', password: PASSWORD, flag: 2 });
    assert.equal(login.status, 200, JSON.stringify(login.body));
  });

  after(async () => {
    await node?.stop();
    await redis?.stop();
    console.log(`redis outage timings (ms) ${JSON.stringify(Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v)])))}`);
  });

  it('a hung Redis (SIGSTOP): requests answer 503 within 2 s; after SIGCONT the same session works again', async () => {
    assert.ok(redis);
    redis.pause();
    try {
      await assertSessionAndLoginUnavailable('hung');
      const ready = await timed(node, 'GET', '/readyz');
      assert.equal(ready.status, 503, JSON.stringify(ready.body));
      assert.ok(ready.ms < FAIL_FAST_MS, `/readyz took ${Math.round(ready.ms)} ms`);
      timings.hung_readyz = ready.ms;
    } finally {
      redis.resume();
    }
    timings.hung_recovery = await until(RECOVERY_MS, 'GET /v1/user/current after SIGCONT', async () =>
      (await timed(node, 'GET', '/v1/user/current', undefined, token)).status === 200);
    assert.ok(node.alive(), node.output());
  });

  it('a stopped Redis: current, login and logout answer 503 within 2 s, /readyz 503, the process stays up', async () => {
    assert.ok(redis);
    await redis.stop();
    await assertSessionAndLoginUnavailable('down');
    // A logout that cannot reach the store must not claim the session ended.
    const quit = await timed(node, 'POST', '/v1/user/quit', undefined, token);
    assertUnavailable('POST /v1/user/quit', quit);
    const ready = await timed(node, 'GET', '/readyz');
    assert.equal(ready.status, 503, JSON.stringify(ready.body));
    assert.equal(ready.body.code, 'upstream_unavailable');
    timings.down_readyz = ready.ms;
    // Still failing fast a while later, while the client is between reconnection attempts.
    await sleep(1500);
    assertUnavailable('GET /v1/user/current (1.5 s into the outage)', await timed(node, 'GET', '/v1/user/current', undefined, token));
    assert.equal((await timed(node, 'GET', '/healthz')).status, 200);
    assert.ok(node.alive(), node.output());
  });

  it('Redis restarted empty on the same port: a new register and login work within 5 s, without restarting latchkey', async () => {
    assert.ok(redis);
    await redis.restart();
    let fresh = '';
    timings.recovery_register = await until(RECOVERY_MS, 'POST /v1/user/register', async () => {
      const registered = await register();
      // Until Redis is reconnected: 503 only, nothing else.
      if (registered.status !== 201) assert.equal(registered.status, 503, JSON.stringify(registered.body));
      if (registered.status === 201) fresh = registered.body.token;
      return registered.status === 201;
    });
    const current = await timed(node, 'GET', '/v1/user/current', undefined, fresh);
    assert.equal(current.status, 200, JSON.stringify(current.body));
    const login = await timed(node, 'POST', '/v1/user/login', { username: `outage${users}`, password: PASSWORD, flag: 0 });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    assert.equal((await timed(node, 'GET', '/v1/user/current', undefined, login.body.token)).status, 200);
    assert.equal((await timed(node, 'GET', '/readyz')).status, 200);
    // The restarted Redis kept nothing, so the old session is gone: a clean 401, not a 5xx.
    assert.equal((await timed(node, 'GET', '/v1/user/current', undefined, token)).status, 401);
    assert.ok(node.alive(), node.output());
  });
});
