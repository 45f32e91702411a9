import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { call, startTestServer, type TestServer } from '../support/server.ts';
import { readOutbox } from '../support/codes.ts';
import { goto, launchChromium, openConsole, registerAccount, skipUnlessChromium } from '../support/browser.ts';

/** The "not you?" page of the new-device alert (src/flows/alerts/new-device.ts), in Chromium. */
describe('console: the new-device alert\'s sign-out-everywhere page', { skip: skipUnlessChromium() }, () => {
  let server: TestServer;
  let browser: Browser;
  before(async () => {
    [server, browser] = await Promise.all([
      startTestServer({ alerts: { new_device: true }, public_url: 'https://login.example.test' }),
      launchChromium(),
    ]);
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('opening the link does nothing; its button ends every session once; the used link says so', async () => {
    const account = await registerAccount(server, 'lin', 'Lin', 'correct horse battery', 'lin@example.test');
    await server.runtime.accounts.markVerified(account.uid, { channel: 'email', email: 'lin@example.test' }, Date.now());
    const login = await call(server, 'POST', '/v1/user/login', {
      username: 'lin', password: account.password, flag: 2, device: { device_id: 'stranger-pc', device_name: 'DESKTOP-7Q', device_model: 'Windows PC' },
    });
    assert.equal(login.status, 200);
    await server.runtime.alerts.settled();
    const mail = readOutbox(server.runtime.config.dataDir).map((entry) => entry as unknown as { kind?: string; text?: string }).find((entry) => entry.kind === 'new_device');
    const token = /\/signout-everywhere\?t=([A-Za-z0-9_-]{43})/.exec(mail?.text ?? '')?.[1];
    assert.ok(token !== undefined, JSON.stringify(mail));

    const { page, context, assertClean } = await openConsole(browser, server, { path: `/signout-everywhere?t=${token}` });
    assert.equal(new URL(page.url()).search, '', 'the secret leaves the address bar');
    await page.getByRole('heading', { name: 'Sign out everywhere' }).waitFor();
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, login.body.token)).status, 200, 'GET does not act');

    await page.getByRole('button', { name: 'Sign out everywhere' }).click();
    await page.getByText('Done: 2 sessions were ended. Sign in again and change your password.').waitFor();
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, login.body.token)).status, 401);
    assert.equal(await page.getByRole('link', { name: 'Go to sign in' }).isVisible(), true);

    await goto(page, server, `/signout-everywhere?t=${token}`);
    await page.getByRole('button', { name: 'Sign out everywhere' }).click();
    await page.getByText('This link has expired or was already used.').waitFor();
    assertClean();
    await context.close();
  });

  it('in Chinese for a zh-CN browser, and a page without its link says so', async () => {
    const { page, context, assertClean } = await openConsole(browser, server, { locale: 'zh-CN', path: '/signout-everywhere' });
    await page.getByRole('heading', { name: '在所有设备上退出登录' }).waitFor();
    await page.getByText('此页面需要邮件中的链接。请从邮件中重新打开链接。').waitFor();
    assert.equal(await page.getByRole('button', { name: '在所有设备上退出登录' }).isVisible(), false);
    assertClean();
    await context.close();
  });
});
