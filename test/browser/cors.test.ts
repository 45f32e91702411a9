/**
 * A web IM client served from its own origin signs in and reads its account through CORS in
 * Chromium; a page on an origin that is not listed is refused by the browser (docs/api.md §1).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { launchChromium, skipUnlessChromium } from '../support/browser.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

/** A page server on its own loopback port: another origin than latchkey's. */
async function pageOrigin(): Promise<{ origin: string; server: Server }> {
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end('<!doctype html><title>web IM client</title><p>client</p>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** What the page's own script gets: the answers, or the browser's refusal. */
function signInAndRead(api: string): Promise<string> {
  return fetch(`${api}/v1/user/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'webim', password: 'correct horse battery', flag: 1 }),
  })
    .then(async (login) => {
      const { token } = (await login.json()) as { token: string };
      const current = await fetch(`${api}/v1/user/current`, { headers: { token } });
      return `${current.status} ${((await current.json()) as { username: string }).username}`;
    })
    .catch((error: unknown) => `refused: ${String(error)}`);
}

describe('a web client on its own origin, in Chromium', { skip: skipUnlessChromium() }, () => {
  let listed: { origin: string; server: Server };
  let other: { origin: string; server: Server };
  let latchkey: TestServer;
  let browser: Browser;
  before(async () => {
    [listed, other, browser] = await Promise.all([pageOrigin(), pageOrigin(), launchChromium()]);
    latchkey = await startTestServer({ cors: { origins: [listed.origin] } });
    const registered = await fetch(`${latchkey.url}/v1/user/register`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'webim', password: 'correct horse battery' }),
    });
    assert.equal(registered.status, 201);
  });
  after(async () => {
    await browser?.close();
    await latchkey?.stop();
    listed?.server.close();
    other?.server.close();
  });

  it('signs in and calls /v1/user/current from the listed origin; the unlisted one is refused', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(listed.origin);
      assert.equal(await page.evaluate(signInAndRead, latchkey.url), '200 webim');

      await page.goto(other.origin);
      assert.match(await page.evaluate(signInAndRead, latchkey.url), /^refused: TypeError/);
    } finally {
      await context.close();
    }
  });
});
