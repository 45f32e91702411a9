import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { call, startTestServer, type TestServer } from '../support/server.ts';

/**
 * Bad input on every route gets a 4xx in the error model, never a 5xx, and nothing is written:
 * the account count and the caller's sessions are the same afterwards.
 */
describe('bad input on every route', () => {
  let server: TestServer;
  let token = '';
  before(async () => {
    server = await startTestServer();
    const registered = await call(server, 'POST', '/v1/user/register', { username: 'eve', password: 'correct horse', flag: 1 });
    token = registered.body.token;
  });
  after(async () => {
    await server.stop();
  });

  const routes: Array<[string, string, boolean]> = [
    ['POST', '/v1/user/register', false],
    ['POST', '/v1/user/login', false],
    ['GET', '/v1/user/current', true],
    ['PUT', '/v1/user/updatepassword', true],
    ['POST', '/v1/user/quit', true],
    ['GET', '/v1/user/sessions', true],
    ['DELETE', '/v1/user/sessions/x', true],
    ['POST', '/v1/user/sessions/revoke_others', true],
    ['GET', '/v1/user/devices', true],
    ['DELETE', '/v1/user/devices/x', true],
  ];

  const bodies: unknown[] = [
    null, 42, 'string', [], [1, 2], {}, { username: 1, password: true, flag: 'x' },
    { username: 'eve', password: 'correct horse', flag: 3 }, { username: 'eve', password: 'correct horse', flag: -1 },
    { username: 'eve', password: 'correct horse', flag: 'x' }, { username: 'eve', password: 'correct horse', flag: 1.5 },
    { username: 'e\u0000ve', password: 'correct horse', flag: 1 }, { username: '👩‍💻\u202e', password: '\u0007\u0008', flag: 1 },
    { username: 'eve', password: 'x'.repeat(10_000), flag: 1 }, { username: 'eve', password: 'correct horse', flag: 1, device: 'nope' },
    { username: 'eve', password: 'correct horse', flag: 1, device: { device_id: 'x'.repeat(1000) } },
    { username: 'eve', password: 'correct horse', flag: 1, extra: { __proto__: { admin: true } } },
    { password: 'correct horse', new_password: 'short' }, { password: 'correct horse', new_password: 42 },
    { __proto__: { polluted: true } }, { constructor: { prototype: { polluted: true } } },
  ];

  const badTokens = ['garbage', 'x'.repeat(10 * 1024), 'A'.repeat(43), '\u00e9'.repeat(43), 'Bearer', ''];

  it('answers every malformed body with a 4xx in the error model', async () => {
    // quit and revoke_others take no body and would end the caller's session: their bad-body
    // answers are covered by the parser tests below, which fail before the handler runs.
    const withBodies = routes.filter(([method, path]) => method !== 'GET' && !path.endsWith('/quit') && !path.endsWith('/revoke_others'));
    for (const [method, path] of withBodies) {
      for (const body of bodies) {
        const answer = await call(server, method, path, body, token);
        assert.ok(answer.status < 500, `${method} ${path} ${JSON.stringify(body)} → ${answer.status}`);
        if (answer.status >= 400) assertErrorModel(answer, `${method} ${path} ${JSON.stringify(body)}`);
      }
    }
  });

  it('refuses a 1 MiB body with 413, raw garbage and wrong content types with 4xx', async () => {
    for (const [method, path] of routes) {
      if (method === 'GET') continue;
      const big = await fetch(server.url + path, { method, headers: { 'content-type': 'application/json', token }, body: JSON.stringify({ a: 'x'.repeat(1 << 20) }) });
      assert.equal(big.status, 413, `${method} ${path}`);
      assertErrorModel({ status: big.status, body: await big.json() }, path);
      for (const [type, body] of [['application/json', '{"a":'], ['application/json', '\u0000\u0001'], ['text/plain', 'hello'], ['application/x-www-form-urlencoded', 'a=b']]) {
        const response = await fetch(server.url + path, { method, headers: { 'content-type': type as string, token }, body });
        assert.ok(response.status >= 400 && response.status < 500, `${method} ${path} ${type} → ${response.status}`);
        assertErrorModel({ status: response.status, body: await response.json() }, `${path} ${type}`);
      }
    }
  });

  it('answers garbage and oversized tokens with 401 unauthorized', async () => {
    for (const [method, path, auth] of routes) {
      if (!auth) continue;
      for (const bad of badTokens) {
        for (const headers of [{ token: bad }, { authorization: `Bearer ${bad}` }]) {
          const response = await fetch(server.url + path, { method, headers });
          assert.ok(response.status === 401 || response.status === 400 || response.status === 431, `${method} ${path} ${bad.slice(0, 10)} → ${response.status}`);
          if (response.status !== 431) assertErrorModel({ status: response.status, body: await response.json() }, path);
        }
      }
    }
  });

  it('unknown routes are 404 not_found in the error model', async () => {
    const answer = await call(server, 'GET', '/v1/nope/here');
    assert.equal(answer.status, 404);
    assertErrorModel(answer, 'unknown route');
    const badUrl = await call(server, 'GET', '/v1/nope/%00%ff');
    assert.equal(badUrl.status, 400);
    assertErrorModel(badUrl, 'undecodable url');
  });

  it('nothing was written by all of that', async () => {
    const sessions = await call(server, 'GET', '/v1/user/sessions', undefined, token);
    assert.equal(sessions.status, 200, 'the caller\'s own session survived');
    assert.equal(sessions.body.length, 1);
    const polluted: Record<string, unknown> = {};
    assert.equal(polluted.polluted, undefined);
    assert.equal(polluted.admin, undefined);
    const login = await call(server, 'POST', '/v1/user/login', { username: 'eve', password: 'correct horse', flag: 1 });
    assert.equal(login.status, 200, 'the password is unchanged');
    assert.equal(login.body.role, 'user');
  });
});

function assertErrorModel(answer: { status: number; body: any }, label: string): void {
  const body = answer.body;
  assert.equal(typeof body, 'object', `${label}: JSON body`);
  assert.equal(body.status, answer.status, `${label}: status field equals HTTP status`);
  assert.match(body.code, /^[a-z_]+$/, `${label}: snake_case code`);
  assert.equal(typeof body.msg, 'string', `${label}: msg`);
  if (body.code === 'invalid_request') assert.equal(typeof body.details?.field, 'string', `${label}: details.field`);
}
