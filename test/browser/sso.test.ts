import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { startSsoWorld, type SsoWorld } from '../support/idp.ts';
import { goto, launchChromium, openConsole, screenshot, skipUnlessChromium } from '../support/browser.ts';

describe('console: SSO against a real OpenID provider, in Chromium', { skip: skipUnlessChromium() }, () => {
  let world: SsoWorld;
  let browser: Browser;
  before(async () => {
    [world, browser] = await Promise.all([startSsoWorld(), launchChromium()]);
  });
  after(async () => {
    await browser?.close();
    await world?.stop();
  });

  it('the provider\'s button leads through its login and consent pages back to a signed-in console', async () => {
    const idpOrigin = new URL(world.idp.issuer).origin;
    const { page, context, assertClean } = await openConsole(browser, world.server, { path: '/', allowOrigins: [idpOrigin] });
    await screenshot(page, 'signin');
    await page.getByRole('link', { name: 'Continue with Corp SSO' }).click();

    await page.waitForURL((url) => url.origin === idpOrigin);
    await page.locator('input[name="login"]').fill('ada');
    await page.locator('input[name="password"]').fill('any password');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.getByRole('button', { name: 'Continue' }).click();

    await page.waitForURL(`${world.server.url}/account`);
    await page.waitForSelector('body[data-ready="true"]');
    assert.match(await page.locator('#who-detail').innerText(), /Ada Lovelace/);
    const thisDevice = page.locator('#devices li', { has: page.getByText('This device', { exact: true }) });
    assert.match(await thisDevice.innerText(), /Chrome on Linux[\s\S]*Single sign-on/);
    const history = String(await page.evaluate('JSON.stringify([location.href, document.referrer])'));
    assert.doesNotMatch(history, /lk_code/, 'the handoff code is out of the address bar');
    assert.ok((await context.cookies()).some((cookie) => cookie.name === 'latchkey_session' && cookie.httpOnly));

    // Signing out of an SSO session goes through the provider's logout (its refresh token is revoked).
    await page.getByRole('button', { name: 'Sign out', exact: true }).first().click();
    await page.waitForURL(`${world.server.url}/`);
    const logouts = await world.server.runtime.accounts.queryAudit({ type: 'oidc_logout', limit: 5 });
    assert.equal(logouts.length, 1);
    assert.equal(logouts[0]?.result, 'ok');
    assert.equal((await context.cookies()).some((cookie) => cookie.name === 'latchkey_session'), false);
    assertClean();
    await context.close();
  });

  it('an SSO failure comes back as words on the sign-in page, and the address bar is cleaned', async () => {
    const { page, context, assertClean } = await openConsole(browser, world.server);
    await goto(page, world.server, '/?sso=corp&oidc_error=access_denied');
    assert.equal(await page.locator('#page-error').innerText(), 'Sign-in was cancelled at your organisation’s sign-in page.');
    assert.equal(new URL(page.url()).search, '');

    // A code coming back to a tab that started this provider's login, but too late (or made up).
    await page.evaluate("sessionStorage.setItem('latchkey.sso_pending', 'corp')");
    await goto(page, world.server, '/?sso=corp&lk_code=not-a-real-code');
    await page.locator('#page-error').filter({ hasText: /\S/ }).waitFor();
    assert.equal(await page.locator('#page-error').innerText(), 'That sign-in took too long or was already used. Please try again.');
    assert.equal(new URL(page.url()).pathname, '/');
    assert.deepEqual((await context.cookies()).map((cookie) => cookie.name).filter((name) => name.startsWith('latchkey_s')), []);
    assertClean();
    await context.close();
  });

  it('a hand-off code arriving in a tab that started no SSO is never exchanged (login CSRF)', async () => {
    const { page, context, assertClean } = await openConsole(browser, world.server);
    const exchanges: string[] = [];
    page.on('request', (request) => {
      if (request.url().includes('/exchange')) exchanges.push(request.url());
    });
    // Whoever made this link holds a real code for their own account and planted its binding cookie.
    await goto(page, world.server, '/?sso=corp&lk_code=' + 'A'.repeat(43));
    await page.locator('#page-error').filter({ hasText: /\S/ }).waitFor();
    assert.equal(await page.locator('#page-error').innerText(), 'That sign-in link was not started in this browser, so it was not used. Sign in below.');
    assert.deepEqual(exchanges, []);
    assert.equal(new URL(page.url()).search, '');
    assertClean();
    await context.close();
  });
});
