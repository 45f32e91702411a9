/**
 * Hole 5 (first half): `PUT /v1/user/updatepassword` checks the current password, so a stolen
 * session could guess it as fast as the hasher ran. Its checks spend the account's login budget.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { startTestServer, type Answer, type TestServer } from '../support/server.ts';

const PASSWORD = 'correct horse';

async function from(server: TestServer, ip: string, method: string, path: string, body: unknown, token?: string): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-forwarded-for': ip };
  if (token !== undefined) headers.token = token;
  const response = await fetch(server.url + path, { method, headers, body: JSON.stringify(body) });
  return { status: response.status, body: await response.json(), headers: response.headers };
}

const changePassword = (server: TestServer, ip: string, token: string, password: string, newPassword: string) =>
  from(server, ip, 'PUT', '/v1/user/updatepassword', { password, new_password: newPassword, revoke_other_sessions: false }, token);
const login = (server: TestServer, ip: string, username: string, password: string) =>
  from(server, ip, 'POST', '/v1/user/login', { username, password, flag: 1 });

const servers: TestServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

async function serverWithUser(username: string, ownerIp: string): Promise<{ s: TestServer; token: string }> {
  const s = await startTestServer({ trust_proxy: '127.0.0.1', login_throttle: { per_account_ip: 5, per_account: 100_000 } });
  servers.push(s);
  const registered = await from(s, ownerIp, 'POST', '/v1/user/register', { username, password: PASSWORD });
  assert.equal(registered.status, 201);
  return { s, token: registered.body.token };
}

describe('a password change is throttled like a login', () => {
  it('a stolen session guessing the current password 40 times at once gets at most 5 checks', async () => {
    const { s, token } = await serverWithUser('erin', '10.2.0.9');
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => changePassword(s, '10.2.0.66', token, `guess number ${i}`, 'a new password')),
    );
    const checked = answers.filter((a) => a.status === 401).length;
    const refused = answers.filter((a) => a.status === 429 && a.body.code === 'rate_limited').length;
    assert.ok(checked <= 5 && refused >= 35, `checked ${checked}, refused ${refused}`);
    assert.equal((await changePassword(s, '10.2.0.66', token, PASSWORD, 'a new password')).status, 429, 'locked, even when right');
    assert.equal((await changePassword(s, '10.2.0.9', token, PASSWORD, 'a new password')).status, 200, 'the owner\'s address is not locked');
  });

  it('shares one budget with login: failed changes lock the address\'s logins, and failed logins its changes', async () => {
    const { s, token } = await serverWithUser('frank', '10.2.1.9');
    for (let i = 0; i < 5; i += 1) {
      assert.equal((await changePassword(s, '10.2.1.66', token, `guess number ${i}`, 'a new password')).status, 401);
    }
    assert.equal((await login(s, '10.2.1.66', 'frank', PASSWORD)).status, 429);

    for (let i = 0; i < 5; i += 1) assert.equal((await login(s, '10.2.1.77', 'frank', `guess number ${i}`)).status, 401);
    assert.equal((await changePassword(s, '10.2.1.77', token, PASSWORD, 'a new password')).status, 429);
  });
});
