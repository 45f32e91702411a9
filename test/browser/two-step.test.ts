import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { call, startTestServer, type TestServer } from '../support/server.ts';
import {
  DESKTOP, goto, horizontalOverflow, launchChromium, onSignInPage, openConsole, PHONE, registerAccount, screenshot, skipUnlessChromium,
  type Account,
} from '../support/browser.ts';
import { totpCodeAt } from '../../src/flows/mfa/totp.ts';

/** A code the server refuses now: none of the steps it would accept (one either way) nor the next. */
function wrongCode(secret: string): string {
  const near = [-30_000, 0, 30_000, 60_000].map((offset) => totpCodeAt(secret, Date.now() + offset));
  for (let n = 0; ; n += 1) {
    const code = String(n * 111_111 % 1_000_000).padStart(6, '0');
    if (!near.includes(code)) return code;
  }
}

async function signInWithCode(page: Page, server: TestServer, email: string): Promise<void> {
  await goto(page, server, '/');
  await page.getByRole('tab', { name: 'One-time code' }).click();
  await page.getByLabel('Email address').fill(email);
  await page.getByRole('button', { name: 'Send me a code' }).click();
  const codeField = page.getByLabel('6-digit code');
  await codeField.waitFor();
  const sent = readFileSync(join(server.runtime.config.dataDir, 'outbox.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
  await codeField.fill(sent.findLast((message: { to: string }) => message.to === email)?.code as string);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

/** The password step, which for an account with TOTP ends on the second step, not on /account. */
async function passwordStep(page: Page, server: TestServer, account: Account): Promise<void> {
  await goto(page, server, '/');
  await page.getByLabel('Username, email or phone').fill(account.username);
  await page.getByRole('textbox', { name: 'Password', exact: true }).fill(account.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('heading', { name: 'Two-step verification' }).waitFor();
}

/** Whether the <img> finished loading with content, within a few seconds. */
async function imageLoaded(page: Page, selector: string): Promise<boolean> {
  // Polled with evaluate: waitForFunction compiles its predicate in the page, which the CSP forbids.
  const check = `(() => { const img = document.querySelector(${JSON.stringify(selector)}); return img.complete && img.naturalWidth > 0; })()`;
  for (let tries = 0; tries < 50; tries += 1) {
    if ((await page.evaluate(check)) === true) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

async function onAccountPage(page: Page, server: TestServer): Promise<void> {
  await page.waitForURL(`${server.url}/account`);
  await page.waitForSelector('body[data-ready="true"]');
  await page.waitForSelector('#mfa[data-ready="true"]');
}

async function signOut(page: Page, server: TestServer): Promise<void> {
  await page.locator('#sign-out').click();
  assert.ok(await onSignInPage(page, server));
}

describe('console: two-step verification, in Chromium', { skip: skipUnlessChromium() }, () => {
  let server: TestServer;
  let browser: Browser;
  let alice: Account;
  before(async () => {
    [server, browser] = await Promise.all([
      startTestServer({ mfa: { secret_key: { id: 'k1', key: randomBytes(32).toString('base64') } } }),
      launchChromium(),
    ]);
    alice = await registerAccount(server, 'alice', 'Alice Liddell', 'correct horse battery', 'alice@example.test');
    await server.runtime.accounts.markVerified(alice.uid, { channel: 'email', email: 'alice@example.test' }, Date.now());
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('turns TOTP on after confirming the password, then signs in with the next code and with a recovery code', async () => {
    const { page, context, assertClean } = await openConsole(browser, server);
    // A one-time code proves no factor of latchkey's: this session must step up before enrolling.
    await signInWithCode(page, server, 'alice@example.test');
    await onAccountPage(page, server);
    const status = page.locator('#mfa-status');
    assert.equal(await status.innerText(), 'Off: your password alone signs you in.');

    await page.getByRole('button', { name: 'Turn on', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: 'Confirm it’s you' });
    await dialog.waitFor();
    await dialog.getByLabel('Password').fill('not the password');
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await dialog.locator('#step-up-error').filter({ hasText: 'That password isn’t right.' }).waitFor();
    await dialog.getByLabel('Password').fill(alice.password);
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await dialog.waitFor({ state: 'detached' });

    // The retried setup shows the QR code as an image that loaded under the CSP, and its key as text.
    const qr = page.getByRole('img', { name: 'QR code to add this account to an authenticator app' });
    await qr.waitFor();
    assert.match(String(await qr.getAttribute('src')), /^data:image\/svg\+xml;base64,/);
    assert.ok(await imageLoaded(page, '#mfa-qr'), 'the QR image loaded (the CSP lets data: images in)');
    const secret = (await page.locator('#mfa-secret').innerText()).trim();
    assert.match(secret, /^[A-Z2-7]{16,}$/);
    assert.equal(await page.locator('#mfa-turn-on').isVisible(), false, 'one secret at a time');
    // The card's top just under the sticky top bar.
    await page.evaluate('window.scrollTo(0, document.getElementById("mfa").getBoundingClientRect().top + window.scrollY - 80)');
    await screenshot(page, 'account-two-step');
    await page.setViewportSize(PHONE);
    assert.equal(await horizontalOverflow(page), 0, 'the QR code and its key fit a phone');
    await page.setViewportSize(DESKTOP);

    const enableCode = page.getByLabel('Code the app shows');
    await enableCode.fill(wrongCode(secret));
    await page.getByRole('button', { name: 'Turn on', exact: true }).last().click();
    await page.locator('#mfa-enable-error').filter({ hasText: 'That code isn’t right.' }).waitFor();
    await enableCode.fill(totpCodeAt(secret, Date.now()));
    await page.locator('#mfa-enable-form button[type="submit"]').click();
    const codeList = page.getByRole('list', { name: 'Recovery codes' });
    await codeList.waitFor();
    const recoveryCodes = (await codeList.locator('li').allInnerTexts()).map((code) => code.trim());
    assert.equal(recoveryCodes.length, 10);
    assert.equal(new Set(recoveryCodes).size, 10);
    assert.ok(await page.getByText('You will not see these codes again.').isVisible());
    assert.ok(await page.getByRole('button', { name: 'Download' }).isVisible());
    await page.setViewportSize(PHONE);
    assert.equal(await horizontalOverflow(page), 0, 'the recovery codes fit a phone');
    await page.setViewportSize(DESKTOP);
    assert.equal(await status.innerText(), 'On: sign-ins ask for a code from your authenticator app. 10 recovery codes left.');
    await page.getByRole('button', { name: 'I saved them' }).click();
    assert.equal(await codeList.locator('li').count(), 0, 'the codes leave the page');
    await signOut(page, server);

    // The password now leads to the second step; the code of the step that enabled TOTP is spent.
    await passwordStep(page, server, alice);
    assert.equal(await page.locator('#panel-password').isVisible(), false, 'the first step is out of the way');
    const secondCode = page.getByLabel('Code from your authenticator app');
    await secondCode.fill(wrongCode(secret));
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.locator('#mfa-second-error').filter({ hasText: 'That code isn’t right' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/');
    await secondCode.fill(totpCodeAt(secret, Date.now() + 30_000));
    // What page script receives (read on its way, before the page navigates away).
    let verifiedBody: Record<string, unknown> = {};
    await page.route('**/v1/user/mfa/verify', async (route) => {
      const response = await route.fetch();
      verifiedBody = await response.json();
      await route.fulfill({ response });
    });
    await page.getByRole('button', { name: 'Verify' }).click();
    await onAccountPage(page, server);
    await page.unroute('**/v1/user/mfa/verify');
    assert.equal(typeof verifiedBody.sid, 'string');
    assert.equal('token' in verifiedBody, false, 'in cookie mode the token goes into the cookie, not to page script');
    const session = (await context.cookies()).find((cookie) => cookie.name === 'latchkey_session');
    assert.ok(session !== undefined && session.httpOnly, 'the second step set the HttpOnly session cookie');
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, session.value)).status, 200);
    await signOut(page, server);

    // A recovery code instead.
    await passwordStep(page, server, alice);
    await page.getByRole('button', { name: 'Use a recovery code' }).click();
    await page.getByLabel('Recovery code').fill(recoveryCodes[0]!);
    await page.getByRole('button', { name: 'Verify' }).click();
    await onAccountPage(page, server);
    assert.equal(await status.innerText(), 'On: sign-ins ask for a code from your authenticator app. 9 recovery codes left.');
    await signOut(page, server);

    // The same recovery code again is refused.
    await passwordStep(page, server, alice);
    await page.getByRole('button', { name: 'Use a recovery code' }).click();
    await page.getByLabel('Recovery code').fill(recoveryCodes[0]!);
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.locator('#mfa-second-error').filter({ hasText: 'That recovery code isn’t right, or it was already used.' }).waitFor();

    // A dead ticket (here: one the server never issued) sends the user back to the first step.
    await page.route('**/v1/user/mfa/verify', async (route) => {
      const body = JSON.parse(route.request().postData() ?? '{}');
      await route.continue({ postData: JSON.stringify({ ...body, mfa_ticket: 'a-ticket-that-is-long-dead' }) });
    });
    await page.getByLabel('Recovery code').fill(recoveryCodes[1]!);
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.locator('#page-error').filter({ hasText: 'That sign-in took too long or had too many wrong codes. Sign in again.' }).waitFor();
    await page.unroute('**/v1/user/mfa/verify');
    assert.equal(await page.locator('#panel-mfa').isVisible(), false);
    assert.equal(await page.locator('#panel-password').isVisible(), true);
    assert.equal(await page.getByRole('tab', { name: 'Password' }).isVisible(), true);

    assertClean();
    await context.close();
  });

  it('a one-time code is a first step too; its session confirms with an app code, then makes new recovery codes and turns TOTP off', async () => {
    // Bob turned TOTP on from his phone (a password login, so proven).
    const bob = await registerAccount(server, 'bob', 'Bob Tables', 'correct horse battery', 'bob@example.test');
    await server.runtime.accounts.markVerified(bob.uid, { channel: 'email', email: 'bob@example.test' }, Date.now());
    const login = await call(server, 'POST', '/v1/user/login', { username: bob.username, password: bob.password, flag: 0 });
    const setup = await call(server, 'POST', '/v1/user/mfa/totp/setup', undefined, login.body.token);
    assert.equal(setup.status, 200, JSON.stringify(setup.body));
    const secret = setup.body.secret as string;
    const enabled = await call(server, 'POST', '/v1/user/mfa/totp/enable', { code: totpCodeAt(secret, Date.now()) }, login.body.token);
    assert.equal(enabled.status, 200, JSON.stringify(enabled.body));

    const { page, context, assertClean } = await openConsole(browser, server);
    await signInWithCode(page, server, 'bob@example.test');
    await page.getByRole('heading', { name: 'Two-step verification' }).waitFor();
    await page.getByRole('button', { name: 'Use a recovery code' }).click();
    await page.getByLabel('Recovery code').fill(enabled.body.recovery_codes[0]);
    await page.getByRole('button', { name: 'Verify' }).click();
    await onAccountPage(page, server);

    // Still a code sign-in: new recovery codes need a factor shown, here the app's next code.
    await page.getByRole('button', { name: 'New recovery codes' }).click();
    await page.getByRole('dialog', { name: 'Make new recovery codes?' }).getByRole('button', { name: 'Make new codes' }).click();
    const dialog = page.getByRole('dialog', { name: 'Confirm it’s you' });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Use a code from your authenticator app instead' }).click();
    await dialog.getByLabel('Code from your authenticator app').fill(totpCodeAt(secret, Date.now() + 30_000));
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    const codeList = page.getByRole('list', { name: 'Recovery codes' });
    await codeList.locator('li').nth(9).waitFor();
    const fresh = (await codeList.locator('li').allInnerTexts()).map((code) => code.trim());
    assert.ok(!fresh.includes(enabled.body.recovery_codes[1]), 'new codes, not the old ones');
    await page.getByRole('button', { name: 'I saved them' }).click();

    await page.getByRole('button', { name: 'Turn off', exact: true }).click();
    await page.getByRole('dialog', { name: 'Turn off two-step verification?' }).getByRole('button', { name: 'Turn off' }).click();
    await page.locator('#mfa-done').filter({ hasText: 'Two-step verification is off.' }).waitFor();
    assert.equal(await dialog.count(), 0, 'stepped up a moment ago: not asked again');
    assert.equal(await page.locator('#mfa-status').innerText(), 'Off: your password alone signs you in.');
    assert.equal((await call(server, 'GET', '/v1/user/mfa', undefined, login.body.token)).body.totp, false);
    assertClean();
    await context.close();
  });

  it('speaks Simplified Chinese at both steps to a zh-CN browser', async () => {
    const carol = await registerAccount(server, 'carol', 'Carol');
    const login = await call(server, 'POST', '/v1/user/login', { username: carol.username, password: carol.password, flag: 0 });
    const setup = await call(server, 'POST', '/v1/user/mfa/totp/setup', undefined, login.body.token);
    const secret = setup.body.secret as string;
    assert.equal((await call(server, 'POST', '/v1/user/mfa/totp/enable', { code: totpCodeAt(secret, Date.now()) }, login.body.token)).status, 200);

    const { page, context, assertClean } = await openConsole(browser, server, { locale: 'zh-CN', path: '/' });
    await page.locator('#username').fill(carol.username);
    await page.locator('#password').fill(carol.password);
    await page.locator('#password-form button[type="submit"]').click();
    await page.getByRole('heading', { name: '两步验证' }).waitFor();
    await page.getByLabel('验证器应用中的 6 位验证码').fill(totpCodeAt(secret, Date.now() + 30_000));
    await page.getByRole('button', { name: '验证' }).click();
    await onAccountPage(page, server);
    assert.equal(await page.locator('#mfa-status').innerText(), '已开启：登录时需要验证器应用中的验证码。剩余 10 个恢复码。');
    assert.ok(await page.getByRole('button', { name: '生成新的恢复码' }).isVisible());
    assertClean();
    await context.close();
  });
});

describe('console: the step-up dialog guards signing out everywhere else, in Chromium', { skip: skipUnlessChromium() }, () => {
  let server: TestServer;
  let browser: Browser;
  before(async () => {
    [server, browser] = await Promise.all([startTestServer(), launchChromium()]);
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('a session from a one-time code confirms the password before it signs every other device out', async () => {
    const carol = await registerAccount(server, 'carol', 'Carol Sign-Out', 'correct horse battery', 'carol@example.test');
    await server.runtime.accounts.markVerified(carol.uid, { channel: 'email', email: 'carol@example.test' }, Date.now());
    const other = await call(server, 'POST', '/v1/user/login', { username: 'carol', password: carol.password, flag: 2 });
    const { page, context, assertClean } = await openConsole(browser, server);
    await signInWithCode(page, server, 'carol@example.test');
    await page.waitForURL(`${server.url}/account`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.getByRole('button', { name: 'Sign out everywhere else' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Sign out everywhere else' }).click();
    const dialog = page.getByRole('dialog', { name: 'Confirm it’s you' });
    await dialog.waitFor();
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, other.body.token)).status, 200, 'nothing happened yet');
    await dialog.getByLabel('Password').fill(carol.password);
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.locator('#devices-status').filter({ hasText: /Signed out \d+ other device/ }).waitFor();
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, other.body.token)).status, 401, 'the other device is signed out');
    assertClean();
    await context.close();
  });
});
