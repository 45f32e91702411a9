/**
 * PostgreSQL goes away under a running node (docs/deploy.md, "When a store fails"): account
 * operations answer 503 upstream_unavailable within the pool's bounds, while sessions that exist
 * keep validating — validation reads only the Kv store — and the same process recovers when
 * PostgreSQL is back. The database is a private server the test crashes; the shared one is never touched.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { call, startTestServer, type Answer, type TestServer } from '../support/server.ts';
import { REDIS_URL, skipUnless, uniquePrefix } from '../support/services.ts';
import { deleteRedisKeys } from '../support/redis.ts';
import { skipUnlessPrivatePostgres, startPrivatePostgres, type PrivatePostgres } from '../support/private-postgres.ts';

/** pg pool: connect gives up after 2 s, a query after 5 s (src/adapters/db/open.ts). */
const ACCOUNT_FAIL_MS = 6000;
const RECOVERY_MS = 15_000;
const PASSWORD = 'postgres outage pw';

async function timedCall(server: TestServer, method: string, path: string, body?: unknown, token?: string): Promise<Answer & { ms: number }> {
  const started = performance.now();
  const answer = await call(server, method, path, body, token);
  return { ...answer, ms: performance.now() - started };
}

function assertUnavailable(what: string, answer: Answer & { ms: number }): void {
  assert.equal(answer.status, 503, `${what}: ${answer.status} ${JSON.stringify(answer.body)}`);
  assert.deepEqual([answer.body.status, answer.body.code], [503, 'upstream_unavailable'], what);
  assert.ok(answer.ms < ACCOUNT_FAIL_MS, `${what} took ${Math.round(answer.ms)} ms`);
}

const skip = (await skipUnless('redis')) || skipUnlessPrivatePostgres();

describe('PostgreSQL outage: account operations 503, existing sessions keep validating, recovery without restart', { skip }, () => {
  const prefix = uniquePrefix('pg-outage');
  let pg: PrivatePostgres | undefined;
  let server: TestServer | undefined;
  let aliceWeb = '';
  let alicePc = '';
  let bob = '';

  before(async () => {
    pg = await startPrivatePostgres();
    server = await startTestServer({ store: REDIS_URL, store_prefix: prefix, db: pg.url });
    const registered = await call(server, 'POST', '/v1/user/register', { username: 'alice', password: PASSWORD, flag: 1 });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    aliceWeb = registered.body.token;
    const pc = await call(server, 'POST', '/v1/user/login', { username: 'alice', password: PASSWORD, flag: 2 });
    assert.equal(pc.status, 200, JSON.stringify(pc.body));
    alicePc = pc.body.token;
    bob = (await call(server, 'POST', '/v1/user/register', { username: 'bob', password: PASSWORD, flag: 1 })).body.token;
    // This node has read alice's profile; bob's it never has.
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, aliceWeb)).status, 200);
  });

  after(async () => {
    await server?.stop();
    pg?.destroy();
    await deleteRedisKeys(prefix);
  });

  it('PostgreSQL killed: login and register answer 503 quickly; sessions, logout and /current (last known profile) keep working', async () => {
    assert.ok(server && pg);
    pg.crash();
    assertUnavailable('login', await timedCall(server, 'POST', '/v1/user/login', { username: 'alice', password: PASSWORD, flag: 0 }));
    assertUnavailable('register', await timedCall(server, 'POST', '/v1/user/register', { username: 'carol', password: PASSWORD }));

    // Validation needs only the Kv store.
    const sessions = await call(server, 'GET', '/v1/user/sessions', undefined, aliceWeb);
    assert.equal(sessions.status, 200, JSON.stringify(sessions.body));
    assert.equal(sessions.body.length, 2);
    assert.equal((await call(server, 'GET', '/v1/user/sessions', undefined, 'not-a-session-token')).status, 401);

    // Past the profile cache's 2 s, alice's profile comes from the last read (stale-if-error)...
    await sleep(2100);
    const current = await call(server, 'GET', '/v1/user/current', undefined, aliceWeb);
    assert.equal(current.status, 200, JSON.stringify(current.body));
    assert.equal(current.body.username, 'alice');
    // ...while a profile this node never read is not invented: 503, and the client keeps its token.
    assertUnavailable('current (profile never read here)', await timedCall(server, 'GET', '/v1/user/current', undefined, bob));

    // A logout needs only the Kv store: it ends the session (its audit row is lost and logged).
    const quit = await call(server, 'POST', '/v1/user/quit', undefined, alicePc);
    assert.equal(quit.status, 200, JSON.stringify(quit.body));
    assert.equal((await call(server, 'GET', '/v1/user/sessions', undefined, alicePc)).status, 401);

    const ready = await call(server, 'GET', '/readyz');
    assert.equal(ready.status, 503);
    assert.deepEqual(ready.body.details, { kv: true, db: false });
  });

  it('PostgreSQL back: login and register work again on the same process', async () => {
    assert.ok(server && pg);
    pg.start();
    const started = performance.now();
    for (;;) {
      const login = await call(server, 'POST', '/v1/user/login', { username: 'alice', password: PASSWORD, flag: 0 });
      if (login.status === 200) break;
      // Until then: 503 and nothing else.
      assert.equal(login.status, 503, JSON.stringify(login.body));
      assert.ok(performance.now() - started < RECOVERY_MS, `no recovery within ${RECOVERY_MS} ms`);
      await sleep(200);
    }
    const registered = await call(server, 'POST', '/v1/user/register', { username: 'carol', password: PASSWORD });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, bob)).status, 200);
    assert.equal((await call(server, 'GET', '/readyz')).status, 200);
  });
});
