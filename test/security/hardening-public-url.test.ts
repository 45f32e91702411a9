/**
 * Behind a TLS-terminating proxy latchkey sees plain http. With `public_url` set to an https
 * origin, the console's cookies are Secure and `__Host-` prefixed whatever the connection looks
 * like, so they never travel in clear text and no sibling subdomain can plant one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/config.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const PASSWORD = 'correct horse battery';

async function cookieLogin(server: TestServer, username: string): Promise<string[]> {
  await fetch(`${server.url}/v1/user/register`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: PASSWORD, flag: 0 }),
  });
  const response = await fetch(`${server.url}/v1/user/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-latchkey-session': 'cookie' },
    body: JSON.stringify({ username, password: PASSWORD, flag: 1 }),
  });
  assert.equal(response.status, 200);
  const body = (await response.json()) as { token?: string };
  assert.equal(body.token, undefined, 'the token is in the cookie, not the body');
  return response.headers.getSetCookie();
}

function cookiePair(setCookie: readonly string[], name: string): string {
  const found = setCookie.find((line) => line.startsWith(`${name}=`));
  assert.ok(found !== undefined, `${name} in ${setCookie.join(' | ')}`);
  return found.slice(0, found.indexOf(';'));
}

describe('public_url decides cookie security (TLS ends at a proxy, trust_proxy off)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ public_url: 'https://login.example.com' });
  });
  after(() => server.stop());

  it('plain-http logins from many browsers at once all get Secure, __Host- cookies that then authenticate', async () => {
    const logins = await Promise.all(Array.from({ length: 5 }, (_, i) => cookieLogin(server, `proxied${i}`)));
    for (const setCookie of logins) {
      assert.equal(setCookie.length, 2, setCookie.join(' | '));
      for (const line of setCookie) {
        assert.match(line, /^__Host-latchkey_(session|csrf)=/, line);
        assert.match(line, /; Secure(;|$)/, line);
        assert.match(line, /; Path=\//, line);
        assert.doesNotMatch(line, /Domain=/i, line);
      }
      const session = cookiePair(setCookie, '__Host-latchkey_session');
      const csrf = cookiePair(setCookie, '__Host-latchkey_csrf');
      const current = await fetch(`${server.url}/v1/user/current`, {
        headers: { cookie: `${session}; ${csrf}`, 'x-latchkey-csrf': csrf.slice(csrf.indexOf('=') + 1) },
      });
      assert.equal(current.status, 200);
      // A cookie without the prefix (planted by a sibling subdomain) is not the session cookie.
      const planted = await fetch(`${server.url}/v1/user/current`, {
        headers: {
          cookie: `latchkey_session=${session.slice(session.indexOf('=') + 1)}`,
          'x-latchkey-csrf': csrf.slice(csrf.indexOf('=') + 1),
        },
      });
      assert.equal(planted.status, 401);
    }
  });
});

describe('without public_url the connection decides, as before', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('a plain-http login gets plain cookies (local development)', async () => {
    const setCookie = await cookieLogin(server, 'local');
    for (const line of setCookie) {
      assert.match(line, /^latchkey_(session|csrf)=/, line);
      assert.doesNotMatch(line, /Secure/, line);
    }
  });
});

describe('public_url in the config', () => {
  it('takes an http(s) origin from the file or LATCHKEY_PUBLIC_URL, and refuses anything else', () => {
    assert.equal(parseConfig({ public_url: 'https://login.example.com/' }).publicUrl, 'https://login.example.com');
    assert.equal(parseConfig({}).publicUrl, undefined);
    for (const bad of ['login.example.com', 'ftp://x.example', 'https://a:b@x.example', 'https://x.example/auth', 'https://x.example/?q=1']) {
      assert.throws(() => parseConfig({ public_url: bad }), /config public_url:/, bad);
    }
  });
});
