/**
 * Answers that carry a secret (session tokens, QR poll secrets and auth codes, IM tokens) must not
 * be kept by a browser, a proxy or a shared cache: every /v1/ answer says `Cache-Control: no-store`
 * (and `Pragma: no-cache` for HTTP/1.0 caches), errors included.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call, startTestServer, testDefaults, type Answer, type TestServer } from '../support/server.ts';
import { exchange, grant, loginRequest, poll, registerApp, scan, type AppUser } from '../support/qr-clients.ts';

const generous = { ...testDefaults.rate_limits, qr_create: { max: 100_000 }, qr_exchange: { max: 100_000 } };

function assertNoStore(answer: Answer, what: string): void {
  assert.equal(answer.headers.get('cache-control'), 'no-store', `${what}: cache-control`);
  assert.equal(answer.headers.get('pragma'), 'no-cache', `${what}: pragma`);
  assert.equal(answer.headers.get('x-content-type-options'), 'nosniff', `${what}: nosniff`);
}

describe('secrets in API answers are never cached', () => {
  let server: TestServer;
  let alice: AppUser;
  before(async () => {
    server = await startTestServer({ rate_limits: generous, qr: { poll_timeout_seconds: 1 } });
    alice = await registerApp(server, 'alice');
  });
  after(() => server.stop());

  it('register, password login and the session routes answer no-store, side by side', async () => {
    const [registered, login, wrong, current, sessions, noToken] = await Promise.all([
      call(server, 'POST', '/v1/user/register', { username: 'bob', password: 'correct horse', flag: 1 }),
      call(server, 'POST', '/v1/user/login', { username: 'alice', password: 'correct horse', flag: 1 }),
      call(server, 'POST', '/v1/user/login', { username: 'alice', password: 'wrong horse', flag: 1 }),
      call(server, 'GET', '/v1/user/current', undefined, alice.token),
      call(server, 'GET', '/v1/user/sessions', undefined, alice.token),
      call(server, 'GET', '/v1/user/current'),
    ]);
    assert.equal(registered.status, 201);
    assert.equal(login.status, 200);
    assert.equal(wrong.status, 401);
    assert.equal(noToken.status, 401);
    for (const [answer, what] of [
      [registered, 'register'], [login, 'login'], [wrong, 'failed login'], [current, 'current'], [sessions, 'sessions'], [noToken, '401'],
    ] as const) assertNoStore(answer, what);
  });

  it('the QR flow: loginuuid (poll secret), loginstatus (auth code) and the exchange (token)', async () => {
    const request = await loginRequest(server);
    const created = await call(server, 'GET', `/v1/user/loginuuid?flag=1&device_id=b&device_name=B&device_model=M`);
    assertNoStore(created, 'loginuuid');
    assert.equal((await scan(server, alice, request.uuid)).status, 200);
    assert.equal((await grant(server, alice, request.uuid, true)).status, 200);
    const status = await poll(server, request.uuid, request.poll_secret, 'scanned');
    assert.equal(status.body.status, 'authed');
    assertNoStore(status, 'loginstatus with auth_code');
    const session = await exchange(server, status.body.auth_code, request.uuid, request.poll_secret);
    assert.equal(session.status, 200);
    assertNoStore(session, 'login_authcode');
  });

  it('one-time code routes and appconfig too; the console pages keep their own caching', async () => {
    const [sent, codeLogin, appconfig, asset] = await Promise.all([
      call(server, 'POST', '/v1/user/code/send', { channel: 'email', to: 'nobody@example.com', purpose: 'login' }),
      call(server, 'POST', '/v1/user/code/login', { channel: 'email', to: 'nobody@example.com', code: '000000', flag: 1 }),
      call(server, 'GET', '/v1/common/appconfig'),
      fetch(`${server.url}/console/console.css`),
    ]);
    assertNoStore(sent, 'code/send');
    assertNoStore(codeLogin, 'code/login');
    assertNoStore(appconfig, 'appconfig');
    assert.notEqual(asset.headers.get('cache-control'), 'no-store', 'static console assets are revalidated, not refetched');
  });
});
