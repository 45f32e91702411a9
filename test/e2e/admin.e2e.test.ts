/**
 * Administration (docs/api.md §9) and POST /v1/auth/verify over HTTP: who may call them, what they do, and
 * that the admin role is read from the account store on every call — a demotion takes effect on
 * the very next request of a session that was an admin's a moment ago.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { setRole } from '../../src/core/accounts.ts';
import { createAccount } from '../../src/flows/password/password-flow.ts';
import { call, startTestServer, type Answer, type TestServer } from '../support/server.ts';

const PASSWORD = 'correct horse battery';
const SERVICE_KEY = 's'.repeat(40);
const USER_AGENT = 'admin-e2e/1.0';

let counter = 0;
const uniqueName = (label: string) => `${label}${process.pid}x${++counter}`;

async function as(server: TestServer, method: string, path: string, token: string, body?: unknown): Promise<Answer> {
  const headers: Record<string, string> = { token, 'user-agent': USER_AGENT };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(server.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text === '' ? text : JSON.parse(text), headers: response.headers };
}

async function account(server: TestServer, username: string, role: 'user' | 'admin' = 'user'): Promise<{ uid: string; token: string }> {
  const user = await createAccount(server.runtime, { username, password: PASSWORD }, role);
  const login = await call(server, 'POST', '/v1/user/login', { username, password: PASSWORD, flag: 1 });
  assert.equal(login.status, 200, JSON.stringify(login.body));
  return { uid: user.uid, token: login.body.token };
}

async function loginAgain(server: TestServer, username: string, flag: number): Promise<Answer> {
  return call(server, 'POST', '/v1/user/login', { username, password: PASSWORD, flag });
}

describe('administration', () => {
  let server: TestServer;
  let admin: { uid: string; token: string };
  let plain: { uid: string; token: string };

  before(async () => {
    server = await startTestServer({ service_keys: [SERVICE_KEY] });
    admin = await account(server, uniqueName('boss'), 'admin');
    plain = await account(server, uniqueName('plain'));
  });
  after(() => server?.stop());

  const routes = (uid: string): [string, string, unknown?][] => [
    ['GET', '/v1/manager/users'],
    ['PUT', `/v1/manager/users/${uid}/status`, { status: 'banned' }],
    ['GET', `/v1/manager/users/${uid}/sessions`],
    ['DELETE', `/v1/manager/users/${uid}/sessions`],
    ['GET', '/v1/manager/audit'],
  ];

  it('a non-admin gets 403 on every admin route, and nothing happens', async () => {
    const victim = await account(server, uniqueName('victim'));
    for (const [method, path, body] of routes(victim.uid)) {
      const answer = await as(server, method, path, plain.token, body);
      assert.equal(answer.status, 403, `${method} ${path}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.code, 'forbidden');
      assert.equal((await call(server, method, path, body)).status, 401, `${method} ${path} without a token`);
    }
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, victim.token)).status, 200, 'the victim was neither banned nor signed out');
  });

  it('demoting an admin takes effect on their next call, with the same session', async () => {
    const name = uniqueName('deputy');
    const deputy = await account(server, name, 'admin');
    assert.equal((await as(server, 'GET', '/v1/manager/users', deputy.token)).status, 200);
    await setRole(server.runtime, deputy.uid, 'user');
    assert.equal((await as(server, 'GET', '/v1/manager/users', deputy.token)).status, 403);
    await setRole(server.runtime, deputy.uid, 'admin');
    assert.equal((await as(server, 'GET', '/v1/manager/users', deputy.token)).status, 200, 'and promotion too');
  });

  it('lists and searches users a page at a time', async () => {
    const prefix = uniqueName('page');
    for (const n of [1, 2, 3]) await createAccount(server.runtime, { username: `${prefix}u${n}`, password: PASSWORD });
    const first = await as(server, 'GET', `/v1/manager/users?query=${prefix}&page_size=2`, admin.token);
    assert.equal(first.status, 200);
    assert.equal(first.body.total, 3);
    const firstNames: string[] = first.body.users.map((u: { username: string }) => u.username);
    assert.equal(firstNames.length, 2);
    assert.deepEqual(Object.keys(first.body.users[0]).sort(), ['created_at', 'email', 'email_verified', 'name', 'phone', 'phone_verified', 'role', 'status', 'uid', 'updated_at', 'username', 'zone']);
    const second = await as(server, 'GET', `/v1/manager/users?query=${prefix}&page_size=2&page=2`, admin.token);
    // Oldest first; accounts made in the same millisecond follow their uid, so only the pages'
    // sizes and that together they hold each account once are fixed.
    const secondNames: string[] = second.body.users.map((u: { username: string }) => u.username);
    assert.deepEqual([...firstNames, ...secondNames].sort(), [`${prefix}u1`, `${prefix}u2`, `${prefix}u3`]);
    assert.equal(second.body.page, 2);
    const defaults = await as(server, 'GET', `/v1/manager/users?query=${prefix}`, admin.token);
    assert.deepEqual([defaults.body.page, defaults.body.page_size], [1, 20], 'the schema fills in the defaults');
    for (const [query, field] of [['page_size=1000', 'page_size'], ['page=0', 'page'], ['page=two', 'page'], ['page_size=1.5', 'page_size']]) {
      const refused = await as(server, 'GET', `/v1/manager/users?${query}`, admin.token);
      assert.equal(refused.status, 400, query);
      assert.equal(refused.body.details.field, `querystring.${field}`, query);
    }
    const audit = await as(server, 'GET', '/v1/manager/audit?limit=0', admin.token);
    assert.deepEqual([audit.status, audit.body.details?.field], [400, 'querystring.limit']);
  });

  it('bans (every session 401 at once, logins refused), audits with ip and user agent, and unbans', async () => {
    const name = uniqueName('troll');
    const troll = await account(server, name);
    const second = (await loginAgain(server, name, 2)).body.token;
    const ban = await as(server, 'PUT', `/v1/manager/users/${troll.uid}/status`, admin.token, { status: 'banned' });
    assert.deepEqual(ban.body, { status: 200, revoked: 2 });
    for (const token of [troll.token, second]) assert.equal((await call(server, 'GET', '/v1/user/current', undefined, token)).status, 401);
    assert.equal((await loginAgain(server, name, 1)).body.code, 'account_disabled');
    const [event] = (await as(server, 'GET', `/v1/manager/audit?uid=${troll.uid}&type=ban`, admin.token)).body.events;
    assert.equal(event.result, 'ok');
    assert.equal(event.ip, '127.0.0.1');
    assert.equal(event.user_agent, USER_AGENT);
    assert.match(event.reason, new RegExp(`^admin:${admin.uid}; 2 session`));

    assert.equal((await as(server, 'PUT', `/v1/manager/users/${troll.uid}/status`, admin.token, { status: 'active' })).status, 200);
    assert.equal((await loginAgain(server, name, 1)).status, 200);
    assert.equal((await as(server, 'PUT', `/v1/manager/users/${admin.uid}/status`, admin.token, { status: 'banned' })).status, 400, 'no self-ban');
    assert.equal((await as(server, 'PUT', '/v1/manager/users/nobody/status', admin.token, { status: 'banned' })).status, 404);
  });

  it('lists a user\'s sessions (never a token) and revokes them all', async () => {
    const name = uniqueName('many');
    const user = await account(server, name);
    const other = (await loginAgain(server, name, 2)).body.token;
    const listed = await as(server, 'GET', `/v1/manager/users/${user.uid}/sessions`, admin.token);
    assert.equal(listed.status, 200);
    assert.equal(listed.body.sessions.length, 2);
    assert.ok(!JSON.stringify(listed.body).includes(user.token), 'no token in the list');
    assert.deepEqual((await as(server, 'DELETE', `/v1/manager/users/${user.uid}/sessions`, admin.token)).body, { revoked: 2 });
    for (const token of [user.token, other]) assert.equal((await call(server, 'GET', '/v1/user/current', undefined, token)).status, 401);
    assert.equal((await as(server, 'GET', '/v1/manager/users/nobody/sessions', admin.token)).status, 404);
    const [event] = (await as(server, 'GET', `/v1/manager/audit?uid=${user.uid}&type=revoke`, admin.token)).body.events;
    assert.equal(event.reason, `admin:${admin.uid}; all:2`);
  });

  it('queries the audit trail with filters, newest first, a page at a time', async () => {
    const name = uniqueName('trail');
    const user = await account(server, name);
    for (let i = 0; i < 3; i++) await call(server, 'POST', '/v1/user/login', { username: name, password: 'wrong password', flag: 1 });
    // `since` is inclusive and in milliseconds: step past the millisecond of the last failed login.
    await sleep(5);
    const since = Date.now();
    await loginAgain(server, name, 1);
    const first = await as(server, 'GET', `/v1/manager/audit?uid=${user.uid}&type=login&limit=2`, admin.token);
    assert.equal(first.status, 200);
    assert.deepEqual(first.body.events.map((e: { result: string }) => e.result), ['ok', 'fail']);
    assert.ok(first.body.events[0].id > first.body.events[1].id, 'newest first');
    const second = await as(server, 'GET', `/v1/manager/audit?uid=${user.uid}&type=login&limit=2&before=${first.body.next_before}`, admin.token);
    assert.deepEqual(second.body.events.map((e: { result: string }) => e.result), ['fail', 'fail']);
    const third = await as(server, 'GET', `/v1/manager/audit?uid=${user.uid}&type=login&limit=2&before=${second.body.next_before}`, admin.token);
    assert.deepEqual(third.body.events.map((e: { result: string; reason: string }) => [e.result, e.reason]), [['ok', 'password']]);
    assert.equal(third.body.next_before, null);
    const recent = await as(server, 'GET', `/v1/manager/audit?uid=${user.uid}&since=${since}`, admin.token);
    assert.deepEqual(recent.body.events.map((e: { type: string; result: string }) => [e.type, e.result]), [['login', 'ok']]);
    assert.equal((await as(server, 'GET', '/v1/manager/audit?type=DROP%20TABLE', admin.token)).status, 400);
    assert.equal((await as(server, 'GET', '/v1/manager/audit?limit=5000', admin.token)).status, 400);
  });
});

describe('POST /v1/auth/verify (for other backends)', () => {
  let server: TestServer;
  let user: { uid: string; token: string };

  before(async () => {
    server = await startTestServer({ service_keys: ['k'.repeat(32), SERVICE_KEY] });
    user = await account(server, uniqueName('verified'));
  });
  after(() => server?.stop());

  const verify = async (token: string, key?: string): Promise<Answer> => {
    const response = await fetch(`${server.url}/v1/auth/verify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { 'x-latchkey-service-key': key }) },
      body: JSON.stringify({ token }),
    });
    return { status: response.status, body: await response.json(), headers: response.headers };
  };

  it('answers who a token belongs to, to a holder of a service key', async () => {
    const answer = await verify(user.token, SERVICE_KEY);
    assert.equal(answer.status, 200);
    assert.deepEqual(Object.keys(answer.body).sort(), ['device_flag', 'name', 'role', 'sid', 'uid']);
    assert.equal(answer.body.uid, user.uid);
    assert.equal(answer.body.role, 'user');
  });

  it('refuses a missing or wrong service key (403) before looking at the token', async () => {
    for (const key of [undefined, '', 'x'.repeat(40), SERVICE_KEY.slice(1)]) {
      const answer = await verify(user.token, key);
      assert.equal(answer.status, 403, `key ${JSON.stringify(key)}`);
      assert.equal(answer.body.code, 'forbidden');
    }
  });

  it('a logged-out or made-up token is 401', async () => {
    const name = uniqueName('gone');
    const gone = await account(server, name);
    assert.equal((await call(server, 'POST', '/v1/user/quit', undefined, gone.token)).status, 200);
    assert.equal((await verify(gone.token, SERVICE_KEY)).status, 401);
    assert.equal((await verify('not-a-token', SERVICE_KEY)).status, 401);
  });

  it('is off (403 for everyone) when no service key is configured', async () => {
    const bare = await startTestServer();
    try {
      const response = await fetch(`${bare.url}/v1/auth/verify`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-latchkey-service-key': '' }, body: JSON.stringify({ token: user.token }),
      });
      assert.equal(response.status, 403);
    } finally {
      await bare.stop();
    }
  });
});
