/**
 * compat.octo_qr (docs/octo-compat.md §5): the TangSengDaoDao web client's QR login, replayed field
 * for field as it sends it — `GET loginuuid?device_id&device_name&device_model`, `qrcode` read as a
 * string, `GET loginstatus?uuid` with no secret (long-polled, no last_status), the app's
 * `GET /v1/qrcode/<uuid>` and `GET grant_login?auth_code=`, then `POST login_authcode/<code>` with
 * no body — and the binding that stands in for the poll secret: loginuuid's HttpOnly cookie, or the
 * requester's address and user agent where the page is on another origin. Attackers: another
 * browser (no cookie), another address, a forged cookie, a second redeem. With octo_qr off, the
 * secret-bound QR is unchanged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../support/server.ts';

const PASSWORD = 'correct horse battery';
const CHROME = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0';
let counter = 0;
const unique = (label: string) => `${label}${process.pid}x${++counter}`;

interface Answer {
  status: number;
  body: any;
  headers: Headers;
}

/** A browser at `ip` (X-Forwarded-For from the trusted proxy): its user agent, its cookies, nothing else. */
interface Browser {
  readonly ip: string;
  readonly userAgent: string;
  /** Extra headers a fetch() from a page sends (Sec-Fetch-Site, Origin). */
  readonly page?: Record<string, string>;
  cookies: Map<string, string>;
}

const browser = (ip: string, userAgent = CHROME, page: Record<string, string> = { 'sec-fetch-site': 'same-origin' }): Browser =>
  ({ ip, userAgent, page, cookies: new Map() });

async function send(server: TestServer, method: string, path: string, options: { from?: Browser; token?: string; body?: unknown; ip?: string } = {}): Promise<Answer> {
  const { from, token, body } = options;
  const headers: Record<string, string> = { 'x-forwarded-for': from?.ip ?? options.ip ?? '203.0.113.200', ...(from?.page ?? {}) };
  if (from !== undefined) headers['user-agent'] = from.userAgent;
  if (from !== undefined && from.cookies.size > 0) headers.cookie = [...from.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  if (token !== undefined) headers.token = token;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(server.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  for (const line of response.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const at = pair?.indexOf('=') ?? -1;
    if (from !== undefined && pair !== undefined && at > 0) from.cookies.set(pair.slice(0, at), pair.slice(at + 1));
  }
  const text = await response.text();
  return { status: response.status, body: text === '' ? null : JSON.parse(text), headers: response.headers };
}

/** An Android app signed in (no flag: APP), as octo's app logs in. */
async function appSession(server: TestServer): Promise<{ uid: string; token: string }> {
  const username = unique('qrl');
  assert.equal((await send(server, 'POST', '/v1/user/register', { body: { username, password: PASSWORD } })).status, 200);
  const login = await send(server, 'POST', '/v1/user/login', { body: { username, password: PASSWORD, device: { device_id: 'phone', device_name: 'Pixel 7', device_model: 'Pixel 7' } } });
  assert.equal(login.status, 200, JSON.stringify(login.body));
  return { uid: login.body.uid, token: login.body.token };
}

async function loginUuid(server: TestServer, from: Browser): Promise<Answer> {
  const created = await send(server, 'GET', '/v1/user/loginuuid?device_id=web-1&device_name=Chrome&device_model=Web', { from });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  return created;
}

const poll = (server: TestServer, from: Browser, uuid: string) => send(server, 'GET', `/v1/user/loginstatus?uuid=${uuid}`, { from });

async function audit(server: TestServer): Promise<string[]> {
  return (await server.runtime.accounts.queryAudit({ type: 'qr_legacy', limit: 1000 })).map((row) => `${row.result}:${row.reason}`);
}

describe('compat.octo_qr: the TangSengDaoDao web client\'s QR login', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({ trust_proxy: '127.0.0.1', compat: { octo: true, octo_qr: true }, qr: { poll_timeout_seconds: 3 } });
  });
  after(async () => server.stop());

  it('the whole web flow, field for field: loginuuid → poll (scanned + uid) → app confirm and grant → poll (authed) → body-less redeem, once', async () => {
    const app = await appSession(server);
    const web = browser('198.51.100.7');
    const created = await loginUuid(server, web);
    const { uuid } = created.body;
    assert.equal(created.body.qrcode, `${server.url}/v1/qrcode/${uuid}`, 'qrcode is the URL string the web client draws');
    assert.match(created.body.qrcode_svg, /^<svg/);
    const cookie = created.headers.getSetCookie().find((line) => line.startsWith(`latchkey_qr_${uuid}=`));
    assert.ok(cookie, 'loginuuid sets the implicit poll secret');
    assert.match(cookie, /HttpOnly/i);
    assert.match(cookie, /SameSite=Strict/i);
    assert.match(cookie, /Path=\/v1\/user\//);

    // The web client's first poll waits while the QR is on screen; the app scans meanwhile.
    const firstPoll = poll(server, web, uuid);
    const confirm = await send(server, 'GET', `/v1/qrcode/${uuid}`, { token: app.token });
    assert.equal(confirm.status, 200, JSON.stringify(confirm.body));
    assert.deepEqual([confirm.body.type, confirm.body.data.auth_code], ['loginConfirm', uuid]);
    const scanned = await firstPoll;
    assert.deepEqual(scanned.body, { status: 'scanned', uid: app.uid });

    const secondPoll = poll(server, web, uuid);
    const granted = await send(server, 'GET', `/v1/user/grant_login?auth_code=${confirm.body.data.auth_code}`, { token: app.token });
    assert.deepEqual([granted.status, granted.body], [200, { status: 200 }]);
    const authed = await secondPoll;
    assert.equal(authed.body.status, 'authed');
    assert.match(authed.body.auth_code, new RegExp(`^${uuid}\\.[A-Za-z0-9_-]{43}$`));
    assert.notEqual(authed.body.auth_code.split('.')[1], confirm.body.data.auth_code, 'the app never saw the exchange code');

    const redeemed = await send(server, 'POST', `/v1/user/login_authcode/${authed.body.auth_code}`, { from: web });
    assert.equal(redeemed.status, 200, JSON.stringify(redeemed.body));
    assert.deepEqual([redeemed.body.uid, redeemed.body.device_flag], [app.uid, 1]);
    assert.equal((await send(server, 'GET', '/v1/user/devices/web-1', { token: redeemed.body.token })).status, 200);
    const again = await send(server, 'POST', `/v1/user/login_authcode/${authed.body.auth_code}`, { from: web });
    assert.equal(again.status, 410, 'the exchange is one-time');
    assert.deepEqual((await poll(server, web, uuid)).body, { status: 'expired' });
    const steps = await audit(server);
    for (const step of ['ok:create:cookie', 'ok:scan', 'ok:grant', 'ok:poll:authed', 'ok:exchange']) assert.ok(steps.includes(step), `${step} in ${steps.join(', ')}`);
  });

  it('another browser without the cookie, even at the same address with the same user agent, neither polls nor redeems', async () => {
    const app = await appSession(server);
    const web = browser('198.51.100.8');
    const { uuid } = (await loginUuid(server, web)).body;
    const twin = browser(web.ip, web.userAgent);
    assert.equal((await poll(server, twin, uuid)).status, 404);
    assert.equal((await send(server, 'GET', `/v1/qrcode/${uuid}`, { token: app.token })).status, 200);
    assert.equal((await send(server, 'GET', `/v1/user/grant_login?auth_code=${uuid}`, { token: app.token })).status, 200);
    assert.equal((await poll(server, twin, uuid)).status, 404, 'no cookie: no auth code, though approved');
    const forged = browser(web.ip, web.userAgent);
    forged.cookies.set(`latchkey_qr_${uuid}`, 'A'.repeat(43));
    assert.equal((await poll(server, forged, uuid)).status, 404);
    const authed = await poll(server, web, uuid);
    assert.equal(authed.body.status, 'authed');
    assert.equal((await send(server, 'POST', `/v1/user/login_authcode/${authed.body.auth_code}`, { from: twin })).status, 404, 'a redeem without the cookie is refused');
    assert.equal((await send(server, 'POST', `/v1/user/login_authcode/${authed.body.auth_code}`, { from: web })).status, 200);
    const steps = await audit(server);
    assert.ok(steps.includes('fail:poll:no_cookie') && steps.includes('fail:poll:cookie') && steps.includes('fail:exchange:no_cookie'), steps.join(', '));
  });

  it('a page on another origin is bound to its address and user agent: another address or browser is refused', async () => {
    const app = await appSession(server);
    const page = { 'sec-fetch-site': 'cross-site', origin: 'https://chat.example' };
    const web = browser('198.51.100.9', CHROME, page);
    const created = await loginUuid(server, web);
    const { uuid } = created.body;
    web.cookies.clear(); // SameSite=Strict: a cross-site fetch never sends it back
    const elsewhere = browser('192.0.2.50', CHROME, page);
    const otherBrowser = browser(web.ip, FIREFOX, page);
    assert.equal((await send(server, 'GET', `/v1/qrcode/${uuid}`, { token: app.token })).status, 200);
    assert.equal((await send(server, 'GET', `/v1/user/grant_login?auth_code=${uuid}`, { token: app.token })).status, 200);
    assert.equal((await poll(server, elsewhere, uuid)).status, 404, 'another address');
    assert.equal((await poll(server, otherBrowser, uuid)).status, 404, 'another user agent');
    const authed = await poll(server, web, uuid);
    assert.equal(authed.body.status, 'authed');
    assert.equal((await send(server, 'POST', `/v1/user/login_authcode/${authed.body.auth_code}`, { from: elsewhere })).status, 404);
    const redeemed = await send(server, 'POST', `/v1/user/login_authcode/${authed.body.auth_code}`, { from: web });
    assert.equal(redeemed.status, 200, JSON.stringify(redeemed.body));
    assert.ok((await audit(server)).includes('fail:poll:address'));
  });

  it('an unknown uuid answers expired, so the web client asks for a new QR', async () => {
    const answer = await poll(server, browser('198.51.100.10'), 'f'.repeat(32));
    assert.deepEqual([answer.status, answer.body], [200, { status: 'expired' }]);
  });

  it('latchkey\'s own secret-bound flow still works beside it (octo-web sends poll_secret)', async () => {
    const app = await appSession(server);
    const web = browser('198.51.100.11');
    const created = await loginUuid(server, web);
    const { uuid, poll_secret: pollSecret } = created.body;
    assert.equal((await send(server, 'GET', `/v1/qrcode/${uuid}`, { token: app.token })).status, 200);
    assert.equal((await send(server, 'GET', `/v1/user/grant_login?auth_code=${uuid}`, { token: app.token })).status, 200);
    const stranger = browser('192.0.2.60', FIREFOX);
    const authed = await send(server, 'GET', `/v1/user/loginstatus?uuid=${uuid}&poll_secret=${pollSecret}`, { from: stranger });
    assert.equal(authed.body.status, 'authed');
    const exchanged = await send(server, 'POST', `/v1/user/login_authcode/${authed.body.auth_code}`, { from: stranger, body: { uuid, poll_secret: pollSecret } });
    assert.equal(exchanged.status, 200, JSON.stringify(exchanged.body));
  });
});

describe('compat.octo without octo_qr: the secret-bound QR is unchanged', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ trust_proxy: '127.0.0.1', compat: { octo: true } });
  });
  after(async () => server.stop());

  it('no cookie, qrcode an object, a secret-less poll and a body-less redeem refused', async () => {
    const app = await appSession(server);
    const web = browser('198.51.100.12');
    const created = await loginUuid(server, web);
    const { uuid, poll_secret: pollSecret } = created.body;
    assert.deepEqual(created.headers.getSetCookie(), []);
    assert.equal(typeof created.body.qrcode, 'object');
    assert.equal(created.body.qrcode.text, `${server.url}/v1/qrcode/${uuid}`);
    assert.equal((await send(server, 'GET', `/v1/qrcode/${uuid}`, { token: app.token })).status, 200);
    assert.equal((await send(server, 'GET', `/v1/user/grant_login?auth_code=${uuid}`, { token: app.token })).status, 200);
    assert.equal((await poll(server, web, uuid)).status, 404);
    assert.equal((await poll(server, web, 'f'.repeat(32))).status, 404);
    const authed = await send(server, 'GET', `/v1/user/loginstatus?uuid=${uuid}&poll_secret=${pollSecret}`, { from: web });
    assert.deepEqual(Object.keys(authed.body).sort(), ['auth_code', 'status']);
    assert.match(authed.body.auth_code, /^[A-Za-z0-9_-]{43}$/);
    assert.equal((await send(server, 'POST', `/v1/user/login_authcode/${authed.body.auth_code}`, { from: web })).status, 400);
    assert.equal((await send(server, 'POST', `/v1/user/login_authcode/${authed.body.auth_code}`, { from: web, body: { uuid, poll_secret: pollSecret } })).status, 200);
  });
});

describe('compat.octo_qr behind a TLS proxy (public_url)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ trust_proxy: '127.0.0.1', public_url: 'https://chat.example', compat: { octo: true, octo_qr: true }, qr: { poll_timeout_seconds: 1 } });
  });
  after(async () => server.stop());

  it('the QR URL is on public_url and the cookie is Secure', async () => {
    const web = browser('198.51.100.13', CHROME, { 'sec-fetch-site': 'same-origin', origin: 'https://chat.example' });
    const created = await loginUuid(server, web);
    const { uuid } = created.body;
    assert.equal(created.body.qrcode, `https://chat.example/v1/qrcode/${uuid}`);
    const cookie = created.headers.getSetCookie().find((line) => line.startsWith(`latchkey_qr_${uuid}=`)) ?? '';
    assert.match(cookie, /Path=\/v1\/user\//);
    assert.match(cookie, /Secure/);
    assert.deepEqual((await poll(server, web, uuid)).body, { status: 'waitScan' }, 'the cookie is taken back');
  });
});
