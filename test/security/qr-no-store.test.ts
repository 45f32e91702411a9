/**
 * The QR answers that carry a secret — the poll secret, the auth code, the session token — must
 * not be kept by a browser or a shared proxy cache (ASVS V7 / docs/security.md hole 14: "secrets in API answers
 * lack Cache-Control: no-store"): a cached loginstatus answer hands its auth code to the next
 * user of the machine.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { call, startTestServer, testDefaults, type TestServer } from '../support/server.ts';
import { exchange, grant, poll, registerApp, scan, browserDevice } from '../support/qr-clients.ts';

describe('QR answers with secrets are not cached', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      rate_limits: { ...testDefaults.rate_limits, qr_create: { max: 1000 }, qr_exchange: { max: 1000 } },
      qr: { poll_timeout_seconds: 4 },
    });
  });
  after(async () => {
    await server.stop();
  });

  it('loginuuid, loginstatus and login_authcode answer with Cache-Control: no-store', async () => {
    const app = await registerApp(server, 'cacheless');
    const created = await call(server, 'GET', `/v1/user/loginuuid?${new URLSearchParams({ flag: '1', ...browserDevice })}`);
    assert.equal(created.status, 200);
    assert.equal(created.headers.get('cache-control'), 'no-store', 'loginuuid (poll secret)');
    const { uuid, poll_secret } = created.body as { uuid: string; poll_secret: string };
    assert.equal((await scan(server, app, uuid)).status, 200);
    assert.equal((await grant(server, app, uuid, true)).status, 200);
    const polled = await poll(server, uuid, poll_secret, 'scanned');
    assert.equal(polled.body.status, 'authed');
    assert.equal(polled.headers.get('cache-control'), 'no-store', 'loginstatus (auth code)');
    const login = await exchange(server, polled.body.auth_code, uuid, poll_secret);
    assert.equal(login.status, 200);
    assert.equal(login.headers.get('cache-control'), 'no-store', 'login_authcode (session token)');
  });
});
