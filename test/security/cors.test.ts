/**
 * Web clients on their own origin (docs/api.md §1): a listed origin may call the API from a browser
 * with its token in a header; any other origin gets no CORS headers (its browser refuses to read
 * the answer), and no origin is ever allowed credentials, so the console's cookie stays same-site.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/config.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const LISTED = 'https://im.example.test';
const OTHER = 'https://evil.example.test';

async function preflight(server: TestServer, origin: string, path = '/v1/user/current', headers = 'token'): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': headers },
  });
}

describe('cross-origin clients', () => {
  let server: TestServer;
  let token: string;
  before(async () => {
    server = await startTestServer({ cors: { origins: [LISTED, 'http://127.0.0.1:8080'], max_age_seconds: 120 } });
    await fetch(`${server.url}/v1/user/register`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'corsuser', password: 'correct horse battery' }),
    });
    const login = await fetch(`${server.url}/v1/user/login`, {
      method: 'POST', headers: { 'content-type': 'application/json', origin: LISTED }, body: JSON.stringify({ username: 'corsuser', password: 'correct horse battery', flag: 1 }),
    });
    assert.equal(login.status, 200);
    assert.equal(login.headers.get('access-control-allow-origin'), LISTED, 'the login answer is readable by the listed origin');
    token = ((await login.json()) as { token: string }).token;
  });
  after(async () => server?.stop());

  it('answers a listed origin\'s preflight with exactly what an IM web client needs, and no credentials', async () => {
    const answer = await preflight(server, LISTED, '/v1/user/current', 'token, content-type, authorization');
    assert.equal(answer.status, 204);
    assert.equal(answer.headers.get('access-control-allow-origin'), LISTED);
    assert.deepEqual(answer.headers.get('access-control-allow-methods')?.split(/,\s*/).sort(), ['DELETE', 'GET', 'POST', 'PUT']);
    assert.deepEqual(answer.headers.get('access-control-allow-headers')?.split(/,\s*/).sort(), ['authorization', 'content-type', 'token']);
    assert.equal(answer.headers.get('access-control-max-age'), '120');
    assert.equal(answer.headers.get('access-control-allow-credentials'), null);
    assert.match(answer.headers.get('vary') ?? '', /origin/i);
  });

  it('lets the listed origin read an answer, Retry-After included, but never with credentials', async () => {
    const current = await fetch(`${server.url}/v1/user/current`, { headers: { origin: LISTED, token } });
    assert.equal(current.status, 200);
    assert.equal(current.headers.get('access-control-allow-origin'), LISTED);
    assert.match(current.headers.get('access-control-expose-headers') ?? '', /retry-after/i);
    assert.equal(current.headers.get('access-control-allow-credentials'), null);
    assert.match(current.headers.get('vary') ?? '', /origin/i);
  });

  it('gives any other origin no CORS headers, and its preflight a 404 in the error model', async () => {
    for (const origin of [OTHER, 'https://im.example.test.evil.test', 'http://im.example.test', 'https://IM.example.test', 'null']) {
      const answer = await preflight(server, origin);
      assert.equal(answer.status, 404, origin);
      assert.equal(((await answer.json()) as { code: string }).code, 'not_found');
      assert.equal(answer.headers.get('access-control-allow-origin'), null, origin);
      const read = await fetch(`${server.url}/v1/user/current`, { headers: { origin, token } });
      assert.equal(read.headers.get('access-control-allow-origin'), null, origin);
      assert.equal(read.headers.get('access-control-allow-methods'), null, origin);
    }
  });

  it('adds nothing to a same-origin request (no Origin header)', async () => {
    const current = await fetch(`${server.url}/v1/user/current`, { headers: { token } });
    assert.equal(current.status, 200);
    assert.equal(current.headers.get('access-control-allow-origin'), null);
  });
});

describe('without cors.origins', () => {
  it('sends no CORS header to anyone and answers OPTIONS 404', async () => {
    const server = await startTestServer();
    try {
      const answer = await preflight(server, LISTED);
      assert.equal(answer.status, 404);
      assert.equal(answer.headers.get('access-control-allow-origin'), null);
    } finally {
      await server.stop();
    }
  });
});

describe('cors.origins in the config', () => {
  it('takes exact origins only: no wildcard, path, pattern or other scheme', () => {
    for (const origin of ['*', 'https://*.example.test', 'https://im.example.test/', 'https://im.example.test/app', 'im.example.test', 'ftp://im.example.test', 'https://user@im.example.test', 'https://im.example.test:443']) {
      assert.throws(() => parseConfig({ cors: { origins: [origin] } }), /config cors\.origins\[0\]: .*exact origin/, origin);
    }
    assert.deepEqual(parseConfig({ cors: { origins: [LISTED, 'http://127.0.0.1:5173'] } }).cors, { origins: [LISTED, 'http://127.0.0.1:5173'], maxAgeSeconds: 600 });
    assert.throws(() => parseConfig({ cors: { origins: [LISTED], max_age_seconds: 100_000 } }), /cors\.max_age_seconds/);
    assert.throws(() => parseConfig({ cors: { origin: [LISTED] } }), /cors\.origin: unknown key; did you mean cors\.origins\?/);
  });
});
