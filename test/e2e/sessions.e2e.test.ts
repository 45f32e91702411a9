import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { call, startTestServer, type TestServer } from '../support/server.ts';
import { REDIS_URL, skipUnless, uniquePrefix } from '../support/services.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { deleteRedisKeys } from '../support/redis.ts';
import { skipUnlessRedisServer } from '../support/processes.ts';
import { startRedisCluster, type RedisCluster } from '../../scripts/redis-cluster.ts';

const device = (id: string) => ({ device_id: id, device_name: `${id} name`, device_model: `${id} model` });

interface Stores {
  overrides(): Promise<Record<string, unknown>>;
  cleanUp(): Promise<void>;
}

const embedded: Stores = { overrides: async () => ({}), cleanUp: async () => {} };

function redisAndPostgres(): Stores {
  const prefix = uniquePrefix('e2e');
  let database: TestDatabase | undefined;
  return {
    async overrides() {
      database = await createTestDatabase();
      return { store: REDIS_URL, store_prefix: prefix, db: database.url };
    },
    async cleanUp() {
      await deleteRedisKeys(prefix);
      await database?.drop();
    },
  };
}

function redisClusterAndPostgres(): Stores {
  let cluster: RedisCluster | undefined;
  let database: TestDatabase | undefined;
  return {
    async overrides() {
      cluster = await startRedisCluster();
      database = await createTestDatabase();
      return { store: cluster.storeUrl, db: database.url };
    },
    async cleanUp() {
      await cluster?.stop();
      await database?.drop();
    },
  };
}

const redisSkip = await skipUnless('redis');
const postgresSkip = await skipUnless('postgres');
describe('sessions end to end (embedded store)', () => sessionSuite(embedded));
describe('sessions end to end (Redis and PostgreSQL)', { skip: redisSkip || postgresSkip }, () => sessionSuite(redisAndPostgres()));
describe('sessions end to end (Redis Cluster and PostgreSQL)', { skip: skipUnlessRedisServer() || postgresSkip }, () =>
  sessionSuite(redisClusterAndPostgres()));

function sessionSuite(stores: Stores): void {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(await stores.overrides());
  });
  after(async () => {
    await server.stop();
    await stores.cleanUp();
  });

  const login = async (username: string, flag: number, id: string) => {
    const answer = await call(server, 'POST', '/v1/user/login', { username, password: 'correct horse', flag, device: device(id) });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return answer.body as { token: string; sid: string; uid: string; device_flag: number };
  };

  it('register, log in on three devices, log out Web: only the Web token dies', async () => {
    const registered = await call(server, 'POST', '/v1/user/register', { username: 'alice', password: 'correct horse', email: 'Alice@Example.test' });
    assert.equal(registered.status, 201);
    assert.equal(registered.body.username, 'alice');
    assert.equal(registered.body.role, 'user');
    assert.match(registered.body.token, /^[A-Za-z0-9_-]{43}$/);

    const app = await login('alice', 0, 'phone');
    const web = await login('alice@example.test', 1, 'browser');
    const pc = await login('alice', 2, 'laptop');

    const listed = await call(server, 'GET', '/v1/user/sessions', undefined, web.token);
    assert.equal(listed.status, 200);
    const sids = listed.body.map((s: { sid: string }) => s.sid);
    for (const s of [app, web, pc]) assert.ok(sids.includes(s.sid));
    assert.equal(listed.body.find((s: { current: boolean }) => s.current).sid, web.sid);
    assert.ok(!JSON.stringify(listed.body).includes(web.token), 'a listing never carries a token');

    const quit = await call(server, 'POST', '/v1/user/quit', undefined, web.token);
    assert.equal(quit.status, 200);
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, web.token)).status, 401);
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, app.token)).status, 200);
    const current = await call(server, 'GET', '/v1/user/current', undefined, pc.token);
    assert.equal(current.status, 200);
    assert.equal(current.body.session.sid, pc.sid);
    assert.equal(current.body.email, 'Alice@Example.test');
  });

  it('accepts the token as a Bearer header too', async () => {
    const s = await login('alice', 1, 'browser-2');
    const response = await fetch(`${server.url}/v1/user/current`, { headers: { authorization: `Bearer ${s.token}` } });
    assert.equal(response.status, 200);
  });

  it('revoke-others keeps only the calling session', async () => {
    const a = await login('alice', 1, 'b1');
    const b = await login('alice', 2, 'p1');
    const keep = await login('alice', 1, 'b2');
    const answer = await call(server, 'POST', '/v1/user/sessions/revoke_others', undefined, keep.token);
    assert.equal(answer.status, 200);
    assert.ok(answer.body.revoked >= 2);
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, a.token)).status, 401);
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, b.token)).status, 401);
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, keep.token)).status, 200);
    const listed = await call(server, 'GET', '/v1/user/sessions', undefined, keep.token);
    assert.deepEqual(listed.body.map((s: { sid: string }) => s.sid), [keep.sid]);
  });

  it('a second APP login revokes the first APP session and nothing else', async () => {
    const web = await login('alice', 1, 'b3');
    const first = await login('alice', 0, 'phone-1');
    const second = await login('alice', 0, 'phone-2');
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, first.token)).status, 401);
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, second.token)).status, 200);
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, web.token)).status, 200);
  });

  it('DELETE /v1/user/sessions/:sid revokes one session, and 404s for another user\'s sid', async () => {
    await call(server, 'POST', '/v1/user/register', { username: 'bob', password: 'correct horse' });
    const bob = await login('bob', 1, 'bob-browser');
    const alice = await login('alice', 1, 'b4');
    const aliceOther = await login('alice', 2, 'p4');
    assert.equal((await call(server, 'DELETE', `/v1/user/sessions/${aliceOther.sid}`, undefined, bob.token)).status, 404);
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, aliceOther.token)).status, 200);
    assert.equal((await call(server, 'DELETE', `/v1/user/sessions/${aliceOther.sid}`, undefined, alice.token)).status, 200);
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, aliceOther.token)).status, 401);
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, bob.token)).status, 200);
  });

  it('Web sessions past the cap revoke the oldest', async () => {
    await call(server, 'POST', '/v1/user/register', { username: 'carol', password: 'correct horse' });
    const made = [];
    for (let i = 0; i < 11; i++) made.push(await login('carol', 1, `web-${i}`));
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, made[0]?.token)).status, 401);
    for (const s of made.slice(1)) assert.equal((await call(server, 'GET', '/v1/user/current', undefined, s.token)).status, 200);
  });

  it('devices are listed, and deleting one revokes its sessions', async () => {
    const s = await login('alice', 2, 'old-laptop');
    const keep = await login('alice', 1, 'b5');
    const devices = await call(server, 'GET', '/v1/user/devices', undefined, keep.token);
    assert.ok(devices.body.some((d: { device_id: string }) => d.device_id === 'old-laptop'));
    assert.equal((await call(server, 'DELETE', '/v1/user/devices/old-laptop', undefined, keep.token)).status, 200);
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, s.token)).status, 401);
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, keep.token)).status, 200);
  });

  it('changing the password signs out the other sessions and the old password stops working', async () => {
    await call(server, 'POST', '/v1/user/register', { username: 'dave', password: 'correct horse' });
    const other = await login('dave', 0, 'd-phone');
    const me = await login('dave', 1, 'd-web');
    const wrong = await call(server, 'PUT', '/v1/user/updatepassword', { password: 'nope nope', new_password: 'battery staple' }, me.token);
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.code, 'invalid_credentials');
    const changed = await call(server, 'PUT', '/v1/user/updatepassword', { password: 'correct horse', new_password: 'battery staple' }, me.token);
    assert.equal(changed.status, 200);
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, other.token)).status, 401);
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, me.token)).status, 200);
    const old = await call(server, 'POST', '/v1/user/login', { username: 'dave', password: 'correct horse', flag: 1 });
    assert.equal(old.status, 401);
    assert.equal((await call(server, 'POST', '/v1/user/login', { username: 'dave', password: 'battery staple', flag: 1 })).status, 200);
  });

  it('unknown user and wrong password get the same answer', async () => {
    const unknown = await call(server, 'POST', '/v1/user/login', { username: 'nobody', password: 'whatever1', flag: 1 });
    const wrong = await call(server, 'POST', '/v1/user/login', { username: 'alice', password: 'whatever1', flag: 1 });
    assert.equal(unknown.status, 401);
    assert.deepEqual(unknown.body, wrong.body);
  });

  it('a taken username (any case) or email is a 409 conflict', async () => {
    const dup = await call(server, 'POST', '/v1/user/register', { username: 'ALICE', password: 'correct horse' });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.code, 'conflict');
    assert.equal(dup.body.details.field, 'username');
    const dupEmail = await call(server, 'POST', '/v1/user/register', { username: 'alice2', password: 'correct horse', email: 'alice@example.test' });
    assert.equal(dupEmail.status, 409);
    assert.equal(dupEmail.body.details.field, 'email');
  });

  it('operations endpoints answer', async () => {
    assert.equal((await call(server, 'GET', '/healthz')).status, 200);
    assert.equal((await call(server, 'GET', '/readyz')).status, 200);
    const metrics = await fetch(`${server.metricsUrl}`).then((r) => r.text());
    assert.match(metrics, /latchkey_login_total\{method="password",result="ok"\}/);
    assert.match(metrics, /latchkey_sessions_revoked_total\{reason="logout"\}/);
    assert.match(metrics, /latchkey_validation_seconds_bucket/);
    const openapi = await call(server, 'GET', '/openapi.json');
    assert.equal(openapi.status, 200);
    assert.ok(openapi.body.paths['/v1/user/login']);
    assert.equal((await fetch(`${server.url}/docs`, { redirect: 'manual' })).status < 400, true);
  });
}
