import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { call, startTestServer, type TestServer } from '../support/server.ts';
import {
  goto, horizontalOverflow, launchChromium, openConsole, PHONE, registerAccount, signInWithPassword, skipUnlessChromium, type Account,
} from '../support/browser.ts';

// Longest values the API accepts, without a space to break at: what a hostile or careless client
// could put in a device list.
const LONG_NAME = 'x'.repeat(128);

describe('console: layout', { skip: skipUnlessChromium() }, () => {
  let server: TestServer;
  let browser: Browser;
  let root: Account;
  before(async () => {
    [server, browser] = await Promise.all([startTestServer(), launchChromium()]);
    root = await registerAccount(server, 'root', 'Rosalind Root');
    assert.ok(await server.runtime.accounts.setRole(root.uid, 'admin', Date.now()));
    const login = await fetch(`${server.url}/v1/user/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': `Mozilla/5.0 ${'Y'.repeat(400)}` },
      body: JSON.stringify({ username: 'root', password: root.password, flag: 2, device: { device_id: LONG_NAME, device_name: LONG_NAME, device_model: LONG_NAME } }),
    });
    assert.equal(login.status, 200);
    await call(server, 'POST', '/v1/user/login', { username: 'root', password: 'a wrong password', flag: 1 });
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('has no horizontal scroll at 390×844 on any page, even with the longest device names', async () => {
    const { page, context, assertClean } = await openConsole(browser, server, { viewport: PHONE, path: '/' });
    const overflow: Record<string, number> = {};
    overflow['/'] = await horizontalOverflow(page);
    for (const tab of ['One-time code', 'QR code']) {
      await page.getByRole('tab', { name: tab }).click();
      if (tab === 'QR code') await page.waitForSelector('#qr-image svg');
      overflow[`/ (${tab})`] = await horizontalOverflow(page);
    }
    await signInWithPassword(page, server, root.username, root.password);
    await page.locator('#devices li').nth(2).waitFor();
    assert.match(await page.locator('#devices').innerText(), new RegExp(LONG_NAME));
    overflow['/account'] = await horizontalOverflow(page);
    await page.getByRole('button', { name: 'Sign out everywhere else' }).click();
    await page.getByRole('dialog').waitFor();
    overflow['/account (dialog)'] = await horizontalOverflow(page);
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    await goto(page, server, '/admin');
    overflow['/admin'] = await horizontalOverflow(page);
    if (server.app.hasRoute({ method: 'GET', url: '/v1/manager/users/:uid/sessions' })) {
      const row = page.locator('#users > li[data-username="root"]');
      await row.getByRole('button', { name: 'Sessions' }).click();
      await row.locator('.sessions-panel li[data-sid]').first().waitFor();
      overflow['/admin (sessions)'] = await horizontalOverflow(page);
    }
    assert.deepEqual(Object.values(overflow).filter((px) => px > 0), [], JSON.stringify(overflow));
    assertClean();
    await context.close();
  });
});
