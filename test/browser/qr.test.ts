import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { randomBytes } from 'node:crypto';
import { call, startTestServer, testDefaults, type TestServer } from '../support/server.ts';
import { totpCodeAt } from '../../src/flows/mfa/totp.ts';
import {
  appToken, launchChromium, openConsole, PHONE, registerAccount, screenshot, skipUnlessChromium, type Account,
} from '../support/browser.ts';

const generousLimits = { ...testDefaults.rate_limits, qr_create: { max: 100_000 }, qr_exchange: { max: 100_000 } };

/** Opens the QR tab and returns the uuid of the request whose code the page shows. */
async function showQr(page: Page, server: TestServer): Promise<string> {
  await page.goto(`${server.url}/`);
  await page.waitForSelector('body[data-ready="true"]');
  await page.getByRole('tab', { name: 'QR code' }).click();
  return shownUuid(page);
}

/** Waits until the page shows a QR code (another than `other`, if given) and returns its request's uuid. */
async function shownUuid(page: Page, other?: string): Promise<string> {
  const image = page.locator(`#qr-image[data-uuid]:has(svg)${other === undefined ? '' : `:not([data-uuid="${other}"])`}`);
  await image.waitFor();
  const uuid = await image.getAttribute('data-uuid');
  assert.match(uuid ?? '', /^[0-9a-f]{32}$/);
  return uuid ?? '';
}

const statusText = (page: Page) => page.locator('#qr-status');

async function statusBecomes(page: Page, text: string): Promise<void> {
  await statusText(page).filter({ hasText: text }).waitFor({ timeout: 10_000 });
}

describe('console: QR sign-in in Chromium', { skip: skipUnlessChromium() }, () => {
  let server: TestServer;
  let browser: Browser;
  let alice: Account;
  let phone: string;
  before(async () => {
    [server, browser] = await Promise.all([startTestServer({ rate_limits: generousLimits }), launchChromium()]);
    alice = await registerAccount(server, 'alice', 'Alice Liddell');
    phone = await appToken(server, alice);
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('the phone scans and approves through the API while the browser follows live, and the browser ends signed in', async () => {
    const { page, context, assertClean } = await openConsole(browser, server, { viewport: PHONE });
    const uuid = await showQr(page, server);
    await statusBecomes(page, 'Scan with your app');
    // A mark on this document: if the page reloaded while following the request, it would be gone.
    await page.evaluate("document.documentElement.setAttribute('data-test-mark', 'same document')");
    await screenshot(page, 'signin-qr-phone');

    const scanned = await call(server, 'POST', `/v1/user/qrcode/${uuid}/scan`, undefined, phone);
    assert.equal(scanned.status, 200, JSON.stringify(scanned.body));
    assert.match(scanned.body.requester.device_name, /Chrome on Linux/, 'the phone sees which browser asks');
    await statusBecomes(page, 'Confirm on your phone');
    assert.equal(await page.locator('html').getAttribute('data-test-mark'), 'same document', 'no reload');

    const granted = await call(server, 'POST', '/v1/user/grant_login', { uuid, approve: true }, phone);
    assert.equal(granted.status, 200, JSON.stringify(granted.body));
    await page.waitForURL(`${server.url}/account`);
    await page.waitForSelector('body[data-ready="true"]');
    const thisDevice = page.locator('#devices li', { has: page.getByText('This device', { exact: true }) });
    assert.match(await thisDevice.innerText(), /Chrome on Linux[\s\S]*QR code from a phone/);
    assertClean();
    await context.close();
  });

  it('a request declined on the phone says so, and offers a new code', async () => {
    const { page, context, assertClean } = await openConsole(browser, server);
    const uuid = await showQr(page, server);
    assert.equal((await call(server, 'POST', `/v1/user/qrcode/${uuid}/scan`, undefined, phone)).status, 200);
    await statusBecomes(page, 'Confirm on your phone');
    assert.equal((await call(server, 'POST', '/v1/user/grant_login', { uuid, approve: false }, phone)).status, 200);
    await statusBecomes(page, 'The sign-in was declined on your phone');
    assert.equal(new URL(page.url()).pathname, '/', 'still signed out');
    assert.deepEqual((await context.cookies()).map((cookie) => cookie.name), []);

    await page.getByRole('button', { name: 'Show a new code' }).click();
    const fresh = await shownUuid(page, uuid);
    assert.notEqual(fresh, uuid);
    await statusBecomes(page, 'Scan with your app');
    assertClean();
    await context.close();
  });
});

describe('console: an expired QR code is replaced on its own', { skip: skipUnlessChromium() }, () => {
  let server: TestServer;
  let browser: Browser;
  before(async () => {
    [server, browser] = await Promise.all([
      startTestServer({ rate_limits: generousLimits, qr: { request_ttl_seconds: 2 } }),
      launchChromium(),
    ]);
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('shows a fresh code when the one on screen lapses, without a click', async () => {
    const { page, context, assertClean } = await openConsole(browser, server);
    const first = await showQr(page, server);
    const second = await shownUuid(page, first);
    assert.notEqual(second, first);
    await statusBecomes(page, 'Scan with your app');
    assertClean();
    await context.close();
  });
});

describe('console: QR sign-in of an account with two-step verification', { skip: skipUnlessChromium() }, () => {
  let server: TestServer;
  let browser: Browser;
  before(async () => {
    [server, browser] = await Promise.all([
      startTestServer({ rate_limits: generousLimits, mfa: { secret_key: { id: 'k1', key: randomBytes(32).toString('base64') } } }),
      launchChromium(),
    ]);
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('approved by a phone that showed no second factor, the browser asks for the code and then signs in', async () => {
    const bob = await registerAccount(server, 'bob', 'Bob Two-Step');
    const phone = await appToken(server, bob);
    const setup = await call(server, 'POST', '/v1/user/mfa/totp/setup', undefined, phone);
    assert.equal((await call(server, 'POST', '/v1/user/mfa/totp/enable', { code: totpCodeAt(setup.body.secret, Date.now()) }, phone)).status, 200);

    const { page, context, assertClean } = await openConsole(browser, server);
    const uuid = await showQr(page, server);
    assert.equal((await call(server, 'POST', `/v1/user/qrcode/${uuid}/scan`, undefined, phone)).status, 200);
    assert.equal((await call(server, 'POST', '/v1/user/grant_login', { uuid, approve: true }, phone)).status, 200);
    const code = page.getByLabel('Code from your authenticator app');
    await code.waitFor();
    assert.equal(new URL(page.url()).pathname, '/', 'not signed in on the approval alone');
    await code.fill(totpCodeAt(setup.body.secret, Date.now() + 30_000));
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL(`${server.url}/account`);
    await page.waitForSelector('body[data-ready="true"]');
    assertClean();
    await context.close();
  });
});
