import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { call, startTestServer, type TestServer } from '../support/server.ts';
import { csrfTokenFor } from '../../src/http/console-session.ts';

const PASSWORD = 'correct horse battery';

interface CookieJar {
  session: string;
  csrf: string;
}

/** Set-Cookie lines of an answer, by cookie name. */
function setCookies(headers: Headers): Map<string, string> {
  return new Map(headers.getSetCookie().map((line) => [line.slice(0, line.indexOf('=')), line]));
}

async function consoleLogin(server: TestServer, username: string, headers: Record<string, string> = {}): Promise<{ response: Response; body: any }> {
  const response = await fetch(`${server.url}/v1/user/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-latchkey-session': 'cookie', ...headers },
    body: JSON.stringify({ username, password: PASSWORD, flag: 1 }),
  });
  return { response, body: await response.json() };
}

function jarOf(response: Response): CookieJar {
  const cookies = setCookies(response.headers);
  const value = (name: string) => {
    const line = cookies.get(name);
    assert.ok(line !== undefined, `${name} is set`);
    return line.slice(name.length + 1, line.indexOf(';'));
  };
  return { session: value('latchkey_session'), csrf: value('latchkey_csrf') };
}

/** A request as the console's script sends it: the cookie rides along, the CSRF header is added. */
async function withCookie(server: TestServer, method: string, path: string, jar: CookieJar, csrf: string | null = jar.csrf, body?: unknown) {
  const headers: Record<string, string> = { cookie: `latchkey_session=${jar.session}; latchkey_csrf=${jar.csrf}` };
  if (csrf !== null) headers['x-latchkey-csrf'] = csrf;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(server.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text === '' ? null : JSON.parse(text), headers: response.headers };
}

describe('web console: pages, cookie sessions and CSRF', () => {
  let server: TestServer;
  let alice: string;
  before(async () => {
    server = await startTestServer();
    const registered = await call(server, 'POST', '/v1/user/register', { username: 'alice', password: PASSWORD, flag: 0 });
    assert.equal(registered.status, 201);
    alice = registered.body.uid;
    assert.equal((await call(server, 'POST', '/v1/user/register', { username: 'bob', password: PASSWORD, flag: 0 })).status, 201);
  });
  after(async () => {
    await server.stop();
  });

  it('serves the three pages with a strict CSP, no framing and no caching', async () => {
    for (const path of ['/', '/account', '/admin']) {
      const response = await fetch(server.url + path);
      assert.equal(response.status, 200, path);
      assert.match(response.headers.get('content-type') ?? '', /^text\/html/);
      const csp = response.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'self'/);
      assert.match(csp, /script-src 'self'(;|$)/, 'no inline script, no eval');
      assert.match(csp, /frame-ancestors 'none'/);
      assert.equal(response.headers.get('x-frame-options'), 'DENY');
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(response.headers.get('referrer-policy'), 'no-referrer');
      assert.equal(response.headers.get('cache-control'), 'no-store');
      const html = await response.text();
      assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'every script is a file');
      assert.doesNotMatch(html, /\sstyle=|\son[a-z]+=/i, 'no inline style or handlers (the CSP would refuse them)');
      assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'nothing from elsewhere');
    }
  });

  it('serves assets by exact name with their type and an ETag, and nothing else', async () => {
    const script = await fetch(`${server.url}/console/signin.js`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.match(script.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    const etag = script.headers.get('etag') ?? '';
    assert.match(etag, /^".+"$/);
    const again = await fetch(`${server.url}/console/signin.js`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    assert.equal((await fetch(`${server.url}/console/console.css`)).headers.get('content-type'), 'text/css; charset=utf-8');
    for (const path of ['/console/nope.js', '/console/..%2Fsignin.html', '/console/%2e%2e%2f%2e%2e%2fconfig.ts', '/console/tsconfig.json']) {
      const missing = await call(server, 'GET', path);
      assert.equal(missing.status, 404, path);
      assert.equal(missing.body.code, 'not_found');
    }
  });

  it('a console login answers without the token and sets it as an HttpOnly, SameSite=Strict cookie', async () => {
    const { response, body } = await consoleLogin(server, 'alice');
    assert.equal(response.status, 200);
    assert.equal(body.token, undefined, 'page script never sees the token');
    assert.equal(body.uid, alice);
    assert.equal(typeof body.sid, 'string');
    const cookies = setCookies(response.headers);
    const session = cookies.get('latchkey_session') ?? '';
    assert.match(session, /; HttpOnly/);
    assert.match(session, /; SameSite=Strict/);
    assert.match(session, /; Path=\//);
    const maxAge = Number(/Max-Age=(\d+)/.exec(session)?.[1]);
    assert.ok(Math.abs(maxAge - server.runtime.config.sessionTtlSeconds) <= 2, 'the cookie lives as long as the session');
    assert.doesNotMatch(session, /Secure/, 'plain http: a Secure cookie would never come back');
    const csrf = cookies.get('latchkey_csrf') ?? '';
    assert.doesNotMatch(csrf, /HttpOnly/, 'the console script reads the CSRF value');
    const jar = jarOf(response);
    assert.equal(jar.csrf, csrfTokenFor(jar.session));
    assert.notEqual(jar.csrf, body.sid);
  });

  it('an API login without the console header still answers with the token and sets no cookie', async () => {
    const answer = await call(server, 'POST', '/v1/user/login', { username: 'alice', password: PASSWORD, flag: 1 });
    assert.equal(answer.status, 200);
    assert.equal(typeof answer.body.token, 'string');
    assert.deepEqual(answer.headers.getSetCookie(), []);
  });

  it('the cookie authenticates only together with the matching CSRF header', async () => {
    const jar = jarOf((await consoleLogin(server, 'alice')).response);
    const ok = await withCookie(server, 'GET', '/v1/user/current', jar);
    assert.equal(ok.status, 200);
    assert.equal(ok.body.uid, alice);

    const missing = await withCookie(server, 'GET', '/v1/user/current', jar, null);
    assert.equal(missing.status, 401, 'a cross-site request carries the cookie but cannot add the header');
    const forged = await withCookie(server, 'POST', '/v1/user/sessions/revoke_others', jar, csrfTokenFor('x'.repeat(43)));
    assert.equal(forged.status, 401);
    const sidAsCsrf = await withCookie(server, 'GET', '/v1/user/current', jar, ok.body.session.sid);
    assert.equal(sidAsCsrf.status, 401, 'the sid (listed to users and admins) is not the CSRF value');
    assert.deepEqual(missing.headers.getSetCookie(), [], 'a refused request does not clear a good cookie');
    assert.equal((await withCookie(server, 'GET', '/v1/user/current', jar)).status, 200, 'and the session lives on');
  });

  it('a cross-site form cannot log in: latchkey takes JSON only, which a form cannot send without a preflight', async () => {
    const form = await fetch(`${server.url}/v1/user/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `username=alice&password=${encodeURIComponent(PASSWORD)}&flag=1`,
    });
    assert.equal(form.status, 415);
    assert.deepEqual(form.headers.getSetCookie(), []);
  });

  it('signing out clears the cookies, and the token is dead', async () => {
    const jar = jarOf((await consoleLogin(server, 'alice')).response);
    const quit = await withCookie(server, 'POST', '/v1/user/quit', jar);
    assert.equal(quit.status, 200);
    const cleared = setCookies(quit.headers);
    assert.match(cleared.get('latchkey_session') ?? '', /^latchkey_session=; .*Max-Age=0/);
    assert.match(cleared.get('latchkey_csrf') ?? '', /^latchkey_csrf=; .*Max-Age=0/);
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, jar.session)).status, 401);
  });

  it('a session revoked elsewhere answers 401 and clears its cookies; a wrong current password does not', async () => {
    const jar = jarOf((await consoleLogin(server, 'bob')).response);
    const wrong = await withCookie(server, 'PUT', '/v1/user/updatepassword', jar, jar.csrf, { password: 'not it at all', new_password: 'another long one' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.code, 'invalid_credentials');
    assert.deepEqual(wrong.headers.getSetCookie(), [], 'a typo in the current password keeps the console signed in');

    const other = await call(server, 'POST', '/v1/user/login', { username: 'bob', password: PASSWORD, flag: 2 });
    assert.equal((await call(server, 'POST', '/v1/user/sessions/revoke_others', undefined, other.body.token)).status, 200);
    const gone = await withCookie(server, 'GET', '/v1/user/sessions', jar);
    assert.equal(gone.status, 401);
    assert.equal(gone.body.code, 'unauthorized');
    assert.match(setCookies(gone.headers).get('latchkey_session') ?? '', /Max-Age=0/);
  });
});

describe('web console behind an https proxy', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ trust_proxy: true });
    assert.equal((await call(server, 'POST', '/v1/user/register', { username: 'alice', password: PASSWORD, flag: 0 })).status, 201);
  });
  after(async () => {
    await server.stop();
  });

  it('uses __Host- cookies marked Secure, so a sibling subdomain cannot plant a session', async () => {
    const { response } = await consoleLogin(server, 'alice', { 'x-forwarded-proto': 'https' });
    assert.equal(response.status, 200);
    const cookies = setCookies(response.headers);
    assert.match(cookies.get('__Host-latchkey_session') ?? '', /; HttpOnly.*; Secure|; Secure.*; HttpOnly/);
    assert.match(cookies.get('__Host-latchkey_csrf') ?? '', /; Secure/);
    assert.equal(cookies.has('latchkey_session'), false);
    const line = cookies.get('__Host-latchkey_session') ?? '';
    const token = line.slice('__Host-latchkey_session='.length, line.indexOf(';'));
    const headers = { cookie: `__Host-latchkey_session=${token}`, 'x-latchkey-csrf': csrfTokenFor(token), 'x-forwarded-proto': 'https' };
    assert.equal((await fetch(`${server.url}/v1/user/current`, { headers })).status, 200);
    const plain = await fetch(`${server.url}/v1/user/current`, { headers: { ...headers, cookie: `latchkey_session=${token}` } });
    assert.equal(plain.status, 401, 'over https only the __Host- cookie counts');
  });
});

describe('GET /v1/user/audit', () => {
  let server: TestServer;
  let aliceToken: string;
  let bobUid: string;
  before(async () => {
    server = await startTestServer();
    const alice = await call(server, 'POST', '/v1/user/register', { username: 'alice', password: PASSWORD, flag: 0 });
    const bob = await call(server, 'POST', '/v1/user/register', { username: 'bob', password: PASSWORD, flag: 0 });
    bobUid = bob.body.uid;
    assert.equal((await call(server, 'POST', '/v1/user/login', { username: 'bob', password: 'wrong password!', flag: 1 })).status, 401);
    assert.equal((await call(server, 'POST', '/v1/user/login', { username: 'alice', password: 'wrong password!', flag: 1 })).status, 401);
    const login = await call(server, 'POST', '/v1/user/login', { username: 'alice', password: PASSWORD, flag: 1 });
    aliceToken = login.body.token;
    assert.ok(alice.body.uid !== bobUid);
  });
  after(async () => {
    await server.stop();
  });

  it('lists the caller\'s own events, newest first, marking this session\'s', async () => {
    const answer = await call(server, 'GET', '/v1/user/audit', undefined, aliceToken);
    assert.equal(answer.status, 200);
    const events = answer.body.events as Array<{ id: number; type: string; result: string; reason: string | null; current: boolean; at: number; ip: string }>;
    assert.deepEqual(events.map((e) => `${e.type}:${e.result}:${e.reason}`), [
      'login:ok:password', 'login:fail:invalid_credentials', 'login:ok:register', 'register:ok:null',
    ]);
    assert.deepEqual(events.map((e) => e.current), [true, false, false, false]);
    assert.ok(events.every((e, i) => i === 0 || (events[i - 1]?.id ?? 0) > e.id));
    assert.equal(events[0]?.ip, '127.0.0.1');
    assert.equal(JSON.stringify(answer.body).includes(bobUid), false, "bob's events never show");
  });

  it('takes a limit of 1 to 100 and refuses the rest as invalid_request', async () => {
    const one = await call(server, 'GET', '/v1/user/audit?limit=1', undefined, aliceToken);
    assert.equal(one.status, 200);
    assert.equal(one.body.events.length, 1);
    for (const limit of ['0', '101', 'abc', '-1', '1.5']) {
      const refused = await call(server, 'GET', `/v1/user/audit?limit=${limit}`, undefined, aliceToken);
      assert.equal(refused.status, 400, limit);
      assert.equal(refused.body.code, 'invalid_request');
      assert.match(refused.body.details.field, /limit/);
    }
    assert.equal((await call(server, 'GET', '/v1/user/audit?uid=someone', undefined, aliceToken)).status, 400, 'no reading another uid');
  });

  it('needs a session', async () => {
    const answer = await call(server, 'GET', '/v1/user/audit');
    assert.equal(answer.status, 401);
    assert.equal(answer.body.code, 'unauthorized');
  });
});
