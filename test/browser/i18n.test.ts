import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { startTestServer, type TestServer } from '../support/server.ts';
import { goto, launchChromium, openConsole, registerAccount, screenshot, skipUnlessChromium, type Account } from '../support/browser.ts';

// Words of the English catalogue that must not show on a page in Chinese.
const ENGLISH = /\b(Sign in|Password|Your account|Sign out|Refresh|Change password|This device|Signed in)\b/;

describe('console: Simplified Chinese from Accept-Language, and the language switch', { skip: skipUnlessChromium() }, () => {
  let server: TestServer;
  let browser: Browser;
  let mei: Account;
  before(async () => {
    [server, browser] = await Promise.all([startTestServer(), launchChromium()]);
    mei = await registerAccount(server, 'mei', '李梅');
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('shows sign-in and account pages in Chinese to a zh-CN browser, then stays English once switched', async () => {
    const { page, context, assertClean } = await openConsole(browser, server, { locale: 'zh-CN', path: '/' });
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    assert.equal(await page.title(), '登录 · latchkey');
    await page.getByRole('heading', { name: '登录' }).waitFor();
    assert.equal(await page.getByRole('tab', { name: '密码' }).getAttribute('aria-selected'), 'true');
    assert.doesNotMatch(await page.locator('body').innerText(), ENGLISH);
    await screenshot(page, 'signin-zh-CN');

    // An error from a script, in words from the Chinese catalogue.
    await page.getByLabel('用户名、邮箱或手机号').fill('mei');
    await page.getByRole('textbox', { name: '密码', exact: true }).fill('not her password');
    await page.getByRole('button', { name: '登录', exact: true }).click();
    await page.getByText('用户名和密码不匹配，请检查后重试。').waitFor();

    await page.getByRole('textbox', { name: '密码', exact: true }).fill(mei.password);
    await page.getByRole('button', { name: '登录', exact: true }).click();
    await page.waitForURL(`${server.url}/account`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.getByRole('heading', { name: '我的账号' }).waitFor();
    const thisDevice = page.locator('#devices li', { has: page.getByText('本设备', { exact: true }) });
    await thisDevice.waitFor();
    // The device is named in the page's words, and dates are written the Chinese way.
    assert.match(await thisDevice.innerText(), /Linux 上的 Chrome[\s\S]*密码 · 127\.0\.0\.1[\s\S]*首次登录 \d{4}年\d{1,2}月\d{1,2}日/);
    assert.match(await page.locator('#activity').innerText(), /使用密码登录[\s\S]*登录失败：密码错误\s+失败/);
    assert.doesNotMatch(await page.locator('body').innerText(), ENGLISH);
    await screenshot(page, 'account-zh-CN', true);

    await page.getByRole('button', { name: 'English' }).click();
    await page.getByRole('heading', { name: 'Your account' }).waitFor();
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    assert.equal((await context.cookies()).find((cookie) => cookie.name === 'latchkey_lang')?.value, 'en');
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    assert.equal(await page.getAttribute('html', 'lang'), 'en', 'the choice outlives a reload');
    await page.getByRole('heading', { name: 'Your account' }).waitFor();
    await page.locator('#devices li', { has: page.getByText('This device', { exact: true }) }).waitFor();
    await page.getByRole('button', { name: 'Sign out', exact: true }).first().click();
    await page.waitForURL(`${server.url}/`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();

    // …and back: the switch on the sign-in page.
    await page.getByRole('button', { name: '中文' }).click();
    await page.getByRole('heading', { name: '登录' }).waitFor();
    assertClean();
    await context.close();
  });

  it('says why a session ended in the chosen language, with the time in its locale', async () => {
    const { page, context, assertClean } = await openConsole(browser, server, { locale: 'zh-CN', path: '/' });
    const ended = { reason: 'replaced', ended_at: Date.UTC(2026, 0, 5, 14, 2), by: { device_name: 'iPhone 15' } };
    await page.evaluate(`sessionStorage.setItem('latchkey.ended', ${JSON.stringify(JSON.stringify(ended))})`);
    await goto(page, server, '/?signed_out=1');
    assert.equal(await page.locator('#notice').innerText(), '已退出登录：你于 14:02 在 iPhone 15 上登录了。');

    await page.getByRole('button', { name: 'English' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.evaluate(`sessionStorage.setItem('latchkey.ended', ${JSON.stringify(JSON.stringify(ended))})`);
    await goto(page, server, '/?signed_out=1');
    assert.equal(await page.locator('#notice').innerText(), 'Signed out: you signed in on iPhone 15 at 02:02 PM.', 'English of a zh-CN browser: plain en, 12-hour');
    assertClean();
    await context.close();
  });

  it('an English browser gets English, and the server says which language it sent', async () => {
    const english = await fetch(`${server.url}/`, { headers: { 'accept-language': 'en-US,en;q=0.9' } });
    assert.match(await english.text(), /<html lang="en">[\s\S]*<h1>Sign in<\/h1>/);
    const chinese = await fetch(`${server.url}/account`, { headers: { 'accept-language': 'zh-Hans' } });
    assert.equal(chinese.headers.get('content-language'), 'zh-CN');
    assert.match(chinese.headers.get('vary') ?? '', /Accept-Language/);
    assert.match(await chinese.text(), /<h1>我的账号<\/h1>/);
    const admin = await fetch(`${server.url}/admin`, { headers: { 'accept-language': 'zh' } });
    assert.match(await admin.text(), /<h1>管理<\/h1>[\s\S]*<option value="qr_grant">扫码确认<\/option>/);
    const chosen = await fetch(`${server.url}/admin`, { headers: { 'accept-language': 'zh-CN', cookie: 'latchkey_lang=en' } });
    assert.match(await chosen.text(), /<h1>Administration<\/h1>/);
    assert.match(chosen.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  });
});
