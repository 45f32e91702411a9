/**
 * OWASP ASVS 5.0, chapter V7 (session management), level 2: one test per requirement latchkey
 * covers, each named by its number. docs/security.md says how each is met.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { call, startTestServer, type TestServer } from '../support/server.ts';
import { startCodeTestServer, type CodeTestServer } from '../support/codes.ts';
import { createAccount } from '../../src/flows/password/password-flow.ts';

const PASSWORD = 'correct horse battery';
const SERVICE_KEY = 'k'.repeat(40);
let counter = 0;
const uniqueName = (stem: string) => `${stem}${process.pid}x${++counter}`;

async function register(server: { url: string }, flag = 1): Promise<{ uid: string; token: string; username: string }> {
  const username = uniqueName('asvs');
  const answer = await call(server, 'POST', '/v1/user/register', { username, password: PASSWORD, flag });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return { uid: answer.body.uid, token: answer.body.token, username };
}

async function login(server: { url: string }, username: string, flag: number): Promise<string> {
  const answer = await call(server, 'POST', '/v1/user/login', { username, password: PASSWORD, flag });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body.token;
}

const current = (server: { url: string }, token: string) => call(server, 'GET', '/v1/user/current', undefined, token);

describe('ASVS V7 session management', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ service_keys: [SERVICE_KEY] });
  });
  after(async () => {
    await server.stop();
  });

  it('7.2.1: a token is verified by the server against its store, for this server and for other backends', async () => {
    const { token } = await register(server);
    // A token of the right shape that the server never issued is refused: nothing is self-certifying.
    const forged = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    assert.equal((await current(server, forged)).status, 401);
    const verify = (t: string) =>
      fetch(`${server.url}/v1/auth/verify`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-latchkey-service-key': SERVICE_KEY },
        body: JSON.stringify({ token: t }),
      });
    assert.equal((await verify(token)).status, 200);
    assert.equal((await verify(forged)).status, 401);
  });

  it('7.2.2 and 7.2.3: every login gets a fresh reference token of 256 random bits, never repeated', async () => {
    const { username } = await register(server);
    const tokens: string[] = [];
    // Four at a time: more logins of one account in flight from one address than the throttle's
    // per-address budget are refused (test/security/throttle-login.test.ts).
    for (let round = 0; round < 10; round += 1) tokens.push(...(await Promise.all([1, 2, 3, 4].map(() => login(server, username, 1)))));
    assert.equal(new Set(tokens).size, tokens.length);
    for (const token of tokens) {
      assert.match(token, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(Buffer.from(token, 'base64url').length, 32);
    }
  });

  it('7.2.4: authenticating again on an exclusive device gives a new token and ends the one it replaces', async () => {
    const { username, token: first } = await register(server, 0);
    const second = await login(server, username, 0);
    assert.notEqual(second, first);
    assert.equal((await current(server, first)).status, 401);
    assert.equal((await current(server, second)).status, 200);
  });

  it('7.4.1: after logout neither this server nor a downstream backend accepts the token', async () => {
    const { token } = await register(server);
    assert.equal((await call(server, 'POST', '/v1/user/quit', undefined, token)).status, 200);
    assert.equal((await current(server, token)).status, 401);
    const verify = await fetch(`${server.url}/v1/auth/verify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-latchkey-service-key': SERVICE_KEY },
      body: JSON.stringify({ token }),
    });
    assert.equal(verify.status, 401);
  });

  it('7.4.2: disabling an account ends every one of its sessions at once', async () => {
    const admin = await createAccount(server.runtime, { username: uniqueName('boss'), password: PASSWORD }, 'admin');
    const adminToken = await login(server, admin.username, 1);
    const { uid, username, token } = await register(server, 0);
    const web = await login(server, username, 1);
    const ban = await call(server, 'PUT', `/v1/manager/users/${uid}/status`, { status: 'banned' }, adminToken);
    assert.equal(ban.status, 200, JSON.stringify(ban.body));
    for (const t of [token, web]) assert.equal((await current(server, t)).status, 401);
  });

  it('7.4.3: a password change offers to end every other session, and does by default', async () => {
    const { username, token } = await register(server, 1);
    const other = await login(server, username, 2);
    const change = await call(server, 'PUT', '/v1/user/updatepassword', { password: PASSWORD, new_password: 'another long secret' }, token);
    assert.equal(change.status, 200, JSON.stringify(change.body));
    assert.equal((await current(server, other)).status, 401);
    assert.equal((await current(server, token)).status, 200);
  });

  it('7.4.5: an administrator ends all sessions of one user', async () => {
    const admin = await createAccount(server.runtime, { username: uniqueName('boss'), password: PASSWORD }, 'admin');
    const adminToken = await login(server, admin.username, 1);
    const { uid, username, token } = await register(server, 0);
    const web = await login(server, username, 1);
    assert.equal((await call(server, 'DELETE', `/v1/manager/users/${uid}/sessions`, undefined, adminToken)).status, 200);
    for (const t of [token, web]) assert.equal((await current(server, t)).status, 401);
    assert.equal((await current(server, adminToken)).status, 200);
  });

  it('7.5.2: a user sees every active session (never a token) and ends any or all of them', async () => {
    const { username, token } = await register(server, 0);
    const web = await login(server, username, 1);
    const pc = await login(server, username, 2);
    const listed = await call(server, 'GET', '/v1/user/sessions', undefined, token);
    assert.equal(listed.body.length, 3);
    assert.ok(!JSON.stringify(listed.body).includes(web) && !JSON.stringify(listed.body).includes(pc));
    const webSid = listed.body.find((s: { device_flag: number }) => s.device_flag === 1).sid;
    assert.equal((await call(server, 'DELETE', `/v1/user/sessions/${webSid}`, undefined, token)).status, 200);
    assert.equal((await current(server, web)).status, 401);
    assert.equal((await call(server, 'POST', '/v1/user/sessions/revoke_others', undefined, token)).body.revoked, 1);
    assert.equal((await current(server, pc)).status, 401);
    assert.equal((await current(server, token)).status, 200);
  });
});

describe('ASVS 7.3 session timeouts', () => {
  let server: CodeTestServer;
  const MINUTE = 60_000;
  before(async () => {
    server = await startCodeTestServer({ session_ttl: 3600, session_idle_timeout: 600 });
  });
  after(async () => {
    await server.stop();
  });

  it('7.3.1: a session unused for longer than session_idle_timeout ends; one in use does not', async () => {
    const idle = await register(server);
    const busy = await register(server);
    for (let minute = 0; minute < 12; minute += 1) {
      server.clock.advance(MINUTE);
      assert.equal((await current(server, busy.token)).status, 200, `busy session at minute ${minute + 1}`);
      await new Promise((resolve) => setTimeout(resolve, 20)); // the last-seen write is not awaited by the request
    }
    assert.equal((await current(server, idle.token)).status, 401);
    // Ended, not merely refused: it is gone from the user's list too.
    assert.equal((await current(server, busy.token)).status, 200);
  });

  it('7.3.2: a session ends at its absolute lifetime however busy it is', async () => {
    const { token } = await register(server);
    for (let minute = 0; minute < 59; minute += 1) {
      server.clock.advance(MINUTE);
      assert.equal((await current(server, token)).status, 200);
    }
    server.clock.advance(2 * MINUTE);
    assert.equal((await current(server, token)).status, 401);
  });
});
