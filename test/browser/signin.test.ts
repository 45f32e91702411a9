import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { call, startTestServer, type TestServer } from '../support/server.ts';
import {
  appToken, launchChromium, onSignInPage, openConsole, registerAccount, screenshot, signInWithPassword,
  skipUnlessChromium, type Account,
} from '../support/browser.ts';

describe('console: signing in with a password or a one-time code, in Chromium', { skip: skipUnlessChromium() }, () => {
  let server: TestServer;
  let browser: Browser;
  let alice: Account;
  before(async () => {
    [server, browser] = await Promise.all([startTestServer(), launchChromium()]);
    alice = await registerAccount(server, 'alice', 'Alice Liddell', 'correct horse battery', 'alice@example.test');
    // Alice proved her address, so her one-time code signs her into this account (not a new one).
    await server.runtime.accounts.markVerified(alice.uid, { channel: 'email', email: 'alice@example.test' }, Date.now());
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('signs in with a password, lists this browser as "this device" (and skips sign-in while signed in), and signs out', async () => {
    // A desktop app signed in too, and someone tried a wrong password: what a real account shows.
    const desktop = { 'content-type': 'application/json', 'user-agent': 'LatchkeyDesktop/2.4 (Macintosh; Mac OS X 14_5)' };
    const laptop = await fetch(`${server.url}/v1/user/login`, {
      method: 'POST', headers: desktop,
      body: JSON.stringify({ username: 'alice', password: alice.password, flag: 2, device: { device_id: 'mbp', device_name: 'Work laptop', device_model: 'MacBook Pro' } }),
    });
    assert.equal(laptop.status, 200);
    await fetch(`${server.url}/v1/user/login`, { method: 'POST', headers: desktop, body: JSON.stringify({ username: 'alice', password: 'guess', flag: 2 }) });
    const { page, context, assertClean } = await openConsole(browser, server);
    await signInWithPassword(page, server, alice.username, alice.password);

    const thisDevice = page.locator('#devices li', { has: page.getByText('This device', { exact: true }) });
    await thisDevice.waitFor();
    assert.equal(await thisDevice.count(), 1);
    assert.match(await thisDevice.innerText(), /Chrome on Linux[\s\S]*Password · 127\.0\.0\.1[\s\S]*First seen/);
    assert.match(await page.locator('#devices').innerText(), /Alice Liddell’s phone/, 'the phone session is listed too');
    assert.match(await page.locator('#devices').innerText(), /Work laptop\s+MacBook Pro/);
    assert.match(await page.locator('#activity').innerText(), /Signed in with a password[\s\S]*Failed sign-in: wrong password\s+Failed/);

    // The session is in an HttpOnly cookie that page script cannot read.
    const cookies = await context.cookies();
    const session = cookies.find((cookie) => cookie.name === 'latchkey_session');
    assert.ok(session !== undefined, 'a session cookie is set');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.ok(!String(await page.evaluate('document.cookie')).includes('latchkey_session'));
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, session.value)).status, 200);

    await screenshot(page, 'account', true);
    await page.goto(`${server.url}/`);
    await page.waitForURL(`${server.url}/account`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.getByRole('button', { name: 'Sign out', exact: true }).first().click();
    assert.ok(await onSignInPage(page, server));
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, session.value)).status, 401, 'the signed-out token is dead');
    assert.equal((await context.cookies()).some((cookie) => cookie.name === 'latchkey_session'), false, 'the cookie is gone');
    assertClean();
    await context.close();
  });

  it('a wrong password shows the error in words, and nothing else changes', async () => {
    const phone = await appToken(server, alice);
    const before = await call(server, 'GET', '/v1/user/sessions', undefined, phone);
    const { page, context, assertClean } = await openConsole(browser, server, { path: '/' });
    await page.getByLabel('Username, email or phone').fill(alice.username);
    await page.getByRole('textbox', { name: 'Password', exact: true }).fill('not the password');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();

    const error = page.locator('#password-error');
    await error.filter({ hasText: /\S/ }).waitFor();
    assert.equal(await error.innerText(), 'That username and password don’t match. Check them and try again.');
    assert.equal(await error.getAttribute('role'), 'alert');
    assert.equal(new URL(page.url()).pathname, '/');
    assert.equal(await page.getByLabel('Username, email or phone').inputValue(), alice.username);
    assert.deepEqual((await context.cookies()).map((cookie) => cookie.name), []);
    const afterwards = await call(server, 'GET', '/v1/user/sessions', undefined, phone);
    assert.deepEqual(afterwards.body.map((s: { sid: string }) => s.sid).sort(), before.body.map((s: { sid: string }) => s.sid).sort());
    assertClean();
    await context.close();
  });

  it('signs in with the keyboard alone, every control reached by Tab and named by its label', async () => {
    const { page, context, assertClean } = await openConsole(browser, server, { path: '/' });
    const focused = async () => String(await page.evaluate('document.activeElement?.id ?? ""'));
    await page.keyboard.press('Tab');
    assert.equal(await focused(), 'tab-password');
    await page.keyboard.press('ArrowRight');
    assert.equal(await focused(), 'tab-code', 'arrow keys move between sign-in methods');
    await page.keyboard.press('ArrowRight');
    assert.equal(await focused(), 'tab-qr');
    assert.equal(await page.locator('#panel-qr').isVisible(), true);
    await page.keyboard.press('Home');
    assert.equal(await focused(), 'tab-password');
    assert.equal(await page.locator('#panel-qr').isVisible(), false);
    await page.keyboard.press('Tab');
    assert.equal(await focused(), 'username');
    await page.keyboard.type(alice.username);
    await page.keyboard.press('Tab');
    assert.equal(await focused(), 'password');
    await page.keyboard.type(alice.password);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${server.url}/account`);
    await page.waitForSelector('body[data-ready="true"]');
    assertClean();
    await context.close();
  });

  it('signs in with a one-time code sent by email; a wrong code is said so in words', async () => {
    const { page, context, assertClean } = await openConsole(browser, server, { path: '/' });
    await page.getByRole('tab', { name: 'One-time code' }).click();
    await page.getByLabel('Email address').fill('alice@example.test');
    await page.getByRole('button', { name: 'Send me a code' }).click();
    const codeField = page.getByLabel('6-digit code');
    await codeField.waitFor();
    const sent = readFileSync(join(server.runtime.config.dataDir, 'outbox.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    const code = sent.findLast((message: { to: string }) => message.to === 'alice@example.test')?.code as string;
    assert.match(code, /^\d{6}$/);

    await codeField.fill(code === '000000' ? '111111' : '000000');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.locator('#code-error').filter({ hasText: 'That code isn’t right. Check the latest message and try again.' }).waitFor();
    await codeField.fill(code);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL(`${server.url}/account`);
    const thisDevice = page.locator('#devices li', { has: page.getByText('This device', { exact: true }) });
    await thisDevice.waitFor();
    assert.match(await thisDevice.innerText(), /One-time code/);
    assertClean();
    await context.close();
  });
});
