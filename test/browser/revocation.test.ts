import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { call, startTestServer, type TestServer } from '../support/server.ts';
import {
  appToken, goto, launchChromium, onSignInPage, openConsole, registerAccount, screenshot, signInWithPassword,
  skipUnlessChromium, type Account,
} from '../support/browser.ts';

/** The "next action" of a console left open: refreshing its device list. */
async function refreshDevices(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Refresh' }).click();
}

async function confirmDialog(page: Page, action: string): Promise<void> {
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  await dialog.getByRole('button', { name: action }).click();
  await dialog.waitFor({ state: 'hidden' });
}

describe('console: a session ended elsewhere ends the open console', { skip: skipUnlessChromium() }, () => {
  let server: TestServer;
  let browser: Browser;
  before(async () => {
    [server, browser] = await Promise.all([startTestServer(), launchChromium()]);
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('"sign out everywhere else" in one browser sends the other browser to sign-in on its next action', async () => {
    const alice = await registerAccount(server, 'alice', 'Alice Liddell');
    const first = await openConsole(browser, server);
    const second = await openConsole(browser, server);
    await signInWithPassword(first.page, server, alice.username, alice.password);
    await signInWithPassword(second.page, server, alice.username, alice.password);

    await refreshDevices(first.page);
    await first.page.locator('#devices li').nth(2).waitFor();
    assert.equal(await first.page.locator('#devices li').count(), 3, 'two browsers and the phone');
    await first.page.getByRole('button', { name: 'Sign out everywhere else' }).click();
    await confirmDialog(first.page, 'Sign out everywhere else');
    await first.page.locator('#devices-status').filter({ hasText: 'Signed out 2 other devices.' }).waitFor();
    await first.page.locator('#devices li').nth(1).waitFor({ state: 'detached' });

    await refreshDevices(second.page);
    assert.ok(await onSignInPage(second.page, server), 'the other browser is on the sign-in page');
    // The 401 said why (docs/api.md §3), and the page says it in words.
    assert.match(await second.page.locator('#notice').innerText(), /^Signed out from another of your devices at \d\d?:\d\d\b.*\. Sign in again to continue\.$/);
    assert.deepEqual((await second.context.cookies()).map((cookie) => cookie.name), [], 'its dead cookie was cleared');

    await refreshDevices(first.page);
    await first.page.locator('#devices-refresh:not([aria-busy])').waitFor();
    assert.equal(new URL(first.page.url()).pathname, '/account', 'the browser that asked stays signed in');
    assert.equal(await first.page.locator('#devices li').count(), 1);
    first.assertClean();
    second.assertClean();
    await Promise.all([first.context.close(), second.context.close()]);
  });

  it('an admin bans a user in one browser; that user\'s open console lands on sign-in at its next action', async (t) => {
    if (!server.app.hasRoute({ method: 'PUT', url: '/v1/manager/users/:uid/status' })) {
      t.skip('SKIPPED: the admin API (/v1/manager/...) is not mounted in this build');
      return;
    }
    const root = await registerAccount(server, 'root', 'Rosalind Root');
    assert.ok(await server.runtime.accounts.setRole(root.uid, 'admin', Date.now()));
    const bob = await registerAccount(server, 'bob', 'Bob Builder');
    for (const [username, name] of [['carol', 'Carol Danvers'], ['dave', 'Dave Lister']] as const) await registerAccount(server, username, name);
    await appToken(server, bob);

    const bobConsole = await openConsole(browser, server);
    await signInWithPassword(bobConsole.page, server, bob.username, bob.password);

    const admin = await openConsole(browser, server);
    await signInWithPassword(admin.page, server, root.username, root.password);
    await admin.page.getByRole('link', { name: 'Admin' }).click();
    await admin.page.waitForURL(`${server.url}/admin`);
    await admin.page.waitForSelector('body[data-ready="true"]');
    await admin.page.getByLabel('Find users by username, name, email or phone').fill('bob');
    await admin.page.getByRole('button', { name: 'Search' }).click();
    const row = admin.page.locator('#users > li[data-username="bob"]');
    await admin.page.locator('#users > li').first().waitFor();
    await admin.page.locator('#users > li').nth(1).waitFor({ state: 'detached' });
    await row.getByRole('button', { name: 'Sessions' }).click();
    await row.locator('.sessions-panel li[data-sid]').first().waitFor();
    assert.equal(await row.locator('.sessions-panel li[data-sid]').count(), 2, "bob's phone and browser");

    await row.getByRole('button', { name: 'Ban' }).click();
    await confirmDialog(admin.page, 'Ban account');
    await admin.page.locator('#users > li[data-username="bob"] [data-status="banned"]').waitFor();
    await admin.page.locator('#users-status').filter({ hasText: 'bob is banned' }).waitFor();

    await refreshDevices(bobConsole.page);
    assert.ok(await onSignInPage(bobConsole.page, server), "bob's console is on the sign-in page");
    assert.match(await bobConsole.page.locator('#notice').innerText(), /This account has been disabled/);
    await bobConsole.page.getByLabel('Username, email or phone').fill(bob.username);
    await bobConsole.page.getByRole('textbox', { name: 'Password', exact: true }).fill(bob.password);
    await bobConsole.page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await bobConsole.page.locator('#password-error').filter({ hasText: 'This account has been disabled.' }).waitFor();

    // The README's picture of the page: a banned user, another one's sessions open.
    await goto(admin.page, server, '/admin');
    await admin.page.locator('#users > li').nth(3).waitFor();
    await admin.page.locator('#users > li[data-username="bob"] [data-status="banned"]').waitFor();
    await admin.page.locator('#users > li[data-username="alice"]').getByRole('button', { name: 'Sessions' }).click();
    await admin.page.locator('#users > li[data-username="alice"] .sessions-panel li[data-sid]').first().waitFor();
    await admin.page.setViewportSize({ width: 1280, height: 1180 });
    await screenshot(admin.page, 'admin');
    const unban = admin.page.locator('#users > li[data-username="bob"]').getByRole('button', { name: 'Unban' });
    await unban.click();
    await admin.page.locator('#users > li[data-username="bob"] [data-status="active"]').waitFor();
    assert.equal((await call(server, 'POST', '/v1/user/login', { username: 'bob', password: bob.password, flag: 1 })).status, 200);
    admin.assertClean();
    bobConsole.assertClean();
    await Promise.all([admin.context.close(), bobConsole.context.close()]);
  });
});
