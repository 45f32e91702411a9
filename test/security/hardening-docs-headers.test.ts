/**
 * `/docs` (Swagger UI) is served from latchkey's own origin, so its script can read the console's
 * CSRF cookie: it gets the console's defences — a CSP with no inline script and nothing from
 * elsewhere, no framing (clickjacking), nosniff and no Referer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { startTestServer, type TestServer } from '../support/server.ts';
import { launchChromium, openConsole, skipUnlessChromium } from '../support/browser.ts';

const DOCS_PATHS = ['/docs', '/docs/', '/docs/static/index.html', '/docs/static/swagger-initializer.js', '/docs/static/swagger-ui.css', '/docs/json'];

describe('/docs carries the console\'s security headers', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('every /docs answer refuses framing, sniffing, Referer and foreign or inline script', async () => {
    const answers = await Promise.all(DOCS_PATHS.map((path) => fetch(`${server.url}${path}`, { redirect: 'manual' })));
    for (const [index, answer] of answers.entries()) {
      const path = DOCS_PATHS[index];
      assert.ok(answer.status < 400, `${path}: ${answer.status}`);
      await answer.arrayBuffer();
      const csp = answer.headers.get('content-security-policy') ?? '';
      assert.match(csp, /frame-ancestors 'none'/, `${path}: csp ${csp}`);
      assert.match(csp, /script-src 'self'(;|$)/, `${path}: script-src only 'self' (${csp})`);
      assert.match(csp, /object-src 'none'/, `${path}: csp`);
      assert.match(csp, /base-uri 'none'/, `${path}: csp`);
      assert.equal(answer.headers.get('x-frame-options'), 'DENY', `${path}: x-frame-options`);
      assert.equal(answer.headers.get('x-content-type-options'), 'nosniff', `${path}: nosniff`);
      assert.equal(answer.headers.get('referrer-policy'), 'no-referrer', `${path}: referrer-policy`);
    }
  });

  it('the page loads only its own scripts (the CSP does not break the UI)', async () => {
    const page = await (await fetch(`${server.url}/docs/static/index.html`)).text();
    assert.doesNotMatch(page, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline <script> for the CSP to block');
    assert.doesNotMatch(page, /\son[a-z]+=/i, 'no inline event handlers');
  });
});

describe('/docs still works under its CSP', { skip: skipUnlessChromium() }, () => {
  let server: TestServer;
  let browser: Browser;
  before(async () => {
    [server, browser] = await Promise.all([startTestServer(), launchChromium()]);
  });
  after(async () => {
    await browser.close();
    await server.stop();
  });

  it('Swagger UI renders the routes with no CSP report and no foreign request', async () => {
    const watched = await openConsole(browser, server);
    await watched.page.goto(`${server.url}/docs`);
    await watched.page.waitForSelector('.opblock-summary-path');
    assert.ok((await watched.page.locator('.opblock-summary-path').count()) > 10);
    watched.assertClean();
    await watched.context.close();
  });
});
