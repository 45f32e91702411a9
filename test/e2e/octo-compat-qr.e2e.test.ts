/**
 * `compat.octo`: QR login approved from an unmodified TangSengDaoDao app (docs/octo-compat.md §2,
 * §5). The QR is a URL under `/v1/qrcode/`; the app GETs it with its token (octo's `loginConfirm`),
 * then `GET /v1/user/grant_login?auth_code=`; the browser polls and exchanges with its poll secret
 * as always. Attackers: another account's app, a Web session, a poller without the secret.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../support/server.ts';

const PASSWORD = 'correct horse battery';
let counter = 0;
const unique = (label: string) => `${label}${process.pid}x${++counter}`;

async function request(method: string, url: string, body?: unknown, token?: string): Promise<{ status: number; body: any }> {
  const response = await fetch(url, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token === undefined ? {} : { token }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? null : JSON.parse(text) };
}

describe('compat.octo: QR login approved from the app', () => {
  let server: TestServer;
  const api = (path: string) => `${server.url}${path}`;

  async function appToken(): Promise<string> {
    const username = unique('qr');
    assert.equal((await request('POST', api('/v1/user/register'), { username, password: PASSWORD })).status, 200);
    const login = await request('POST', api('/v1/user/login'), { username, password: PASSWORD, device: { device_id: 'phone', device_name: 'Pixel', device_model: 'Pixel' } });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    return login.body.token;
  }

  async function qrRequest(): Promise<{ uuid: string; pollSecret: string; scanUrl: string }> {
    const created = await request('GET', api('/v1/user/loginuuid?device_id=web-1&device_name=Chrome&device_model=Web'));
    assert.equal(created.status, 200, JSON.stringify(created.body));
    return { uuid: created.body.uuid, pollSecret: created.body.poll_secret, scanUrl: created.body.qrcode.text };
  }

  before(async () => {
    server = await startTestServer({ compat: { octo: true } });
  });
  after(async () => server.stop());

  it('the QR is a URL under /v1/qrcode/ on the API host; the app opens it, approves, and the browser logs in', async () => {
    const token = await appToken();
    const { uuid, pollSecret, scanUrl } = await qrRequest();
    assert.equal(scanUrl, `${server.url}/v1/qrcode/${uuid}`);
    const confirm = await request('GET', scanUrl, undefined, token);
    assert.equal(confirm.status, 200, JSON.stringify(confirm.body));
    assert.deepEqual({ forward: confirm.body.forward, type: confirm.body.type, data: confirm.body.data }, {
      forward: 'native', type: 'loginConfirm', data: { auth_code: uuid, pub_key: '' },
    });
    assert.equal(confirm.body.requester.device_name, 'Chrome');
    const granted = await request('GET', api(`/v1/user/grant_login?auth_code=${confirm.body.data.auth_code}`), undefined, token);
    assert.deepEqual([granted.status, granted.body], [200, { status: 200 }]);
    // Without the poll secret the browser learns nothing; with it, the auth code.
    assert.equal((await request('GET', api(`/v1/user/loginstatus?uuid=${uuid}`))).status, 404);
    const polled = await request('GET', api(`/v1/user/loginstatus?uuid=${uuid}&poll_secret=${pollSecret}`));
    assert.equal(polled.body.status, 'authed');
    const exchanged = await request('POST', api(`/v1/user/login_authcode/${polled.body.auth_code}`), { uuid, poll_secret: pollSecret });
    assert.equal(exchanged.status, 200, JSON.stringify(exchanged.body));
    assert.equal(exchanged.body.device_flag, 1);
  });

  it('another account\'s app cannot take over a scanned QR, a Web session cannot scan, and a stranger cannot grant it', async () => {
    const owner = await appToken();
    const stranger = await appToken();
    const { uuid, scanUrl } = await qrRequest();
    assert.equal((await request('GET', scanUrl, undefined, owner)).status, 200);
    const takeover = await request('GET', scanUrl, undefined, stranger);
    assert.deepEqual([takeover.status, takeover.body.code], [400, 'conflict']);
    const grant = await request('GET', api(`/v1/user/grant_login?auth_code=${uuid}`), undefined, stranger);
    assert.deepEqual([grant.status, grant.body.code], [400, 'forbidden']);
    const username = unique('web');
    const web = (await request('POST', api('/v1/user/register'), { username, password: PASSWORD, flag: 1 })).body.token;
    const fresh = await qrRequest();
    const byWeb = await request('GET', fresh.scanUrl, undefined, web);
    assert.deepEqual([byWeb.status, byWeb.body.code], [400, 'forbidden']);
    const noToken = await request('GET', fresh.scanUrl);
    assert.deepEqual([noToken.status, noToken.body.msg], [401, '请先登录！']);
  });
});
