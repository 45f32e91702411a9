/**
 * Debian's Chromium driven by playwright-core, for the console's browser tests. In CI (CI=true)
 * Chromium is required (.ci/run installs it); elsewhere a missing one skips the suite, loudly.
 *
 * Every page a test opens is watched: a script error, a console error (CSP violations are
 * reported there) or a request to any origin but latchkey's own (and those the test allows, such
 * as an IdP) fails the test at `assertClean`. The console must run on closed networks.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { call, type TestServer } from './server.ts';

export const CHROMIUM = '/usr/bin/chromium';

// Flags that keep a headless Chromium quiet on a closed network: no background fetches, no
// component updates, no QUIC probes, no sandbox (CI runs as root).
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  // A closed network for real: no name but localhost resolves, whoever asks (an IdP's page may
  // want web fonts); nothing waits on a DNS timeout.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
];

const inCi = process.env.CI === 'true' || process.env.CI === '1';

export function skipUnlessChromium(): false | string {
  if (existsSync(CHROMIUM)) return false;
  if (inCi) throw new Error(`Chromium is required in CI but ${CHROMIUM} is missing (apt-get install -y chromium)`);
  const message = `SKIPPED: browser tests need Chromium at ${CHROMIUM} — apt-get install -y chromium`;
  process.stderr.write(`\n*** ${message} ***\n\n`);
  return message;
}

/** Playwright gives every launch a fresh, temporary user-data-dir and removes it on close. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

export const PHONE = { width: 390, height: 844 } as const;
export const DESKTOP = { width: 1280, height: 860 } as const;

export interface WatchedPage {
  readonly page: Page;
  readonly context: BrowserContext;
  /** Fails with everything that went wrong in the page: script errors, CSP reports, foreign requests. */
  assertClean(): void;
}

export async function openConsole(
  browser: Browser,
  server: TestServer,
  options: { viewport?: { width: number; height: number }; allowOrigins?: readonly string[]; path?: string; locale?: string } = {},
): Promise<WatchedPage> {
  // The locale is also the Accept-Language Chromium sends, which picks the console's language.
  const context = await browser.newContext({ viewport: options.viewport ?? DESKTOP, locale: options.locale ?? 'en-GB', timezoneId: 'UTC' });
  const page = await context.newPage();
  const own = new URL(server.url).origin;
  const allowed = new Set([own, ...(options.allowOrigins ?? [])]);
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const text = message.text();
    // An API answering 4xx is logged by Chromium as a failed resource load: expected, not a fault.
    if (/Failed to load resource: the server responded with a status of 4\d\d/.test(text)) return;
    if (new URL(page.url()).origin !== own) return;
    problems.push(`console error: ${text}`);
  });
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.protocol === 'data:' || url.protocol === 'about:' || url.protocol === 'blob:') return;
    // Only the console's own pages are held to this; an IdP's login page is not latchkey's to judge.
    const from = request.frame().url();
    if (from !== '' && from !== 'about:blank' && new URL(from).origin !== own) return;
    if (!allowed.has(url.origin)) problems.push(`request to a foreign origin: ${request.url()}`);
  });
  if (options.path !== undefined) await goto(page, server, options.path);
  return {
    page,
    context,
    assertClean() {
      assert.deepEqual(problems, [], problems.join('\n'));
    },
  };
}

/** Loads a console page and waits until its script has finished setting it up. */
export async function goto(page: Page, server: TestServer, path: string): Promise<void> {
  await page.goto(server.url + path);
  await page.waitForSelector('body[data-ready="true"]');
}

export async function signInWithPassword(page: Page, server: TestServer, username: string, password: string): Promise<void> {
  await goto(page, server, '/');
  await page.getByLabel('Username, email or phone').fill(username);
  await page.getByRole('textbox', { name: 'Password', exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL(`${server.url}/account`);
  await page.waitForSelector('body[data-ready="true"]');
}

/** True when the sign-in form is what the page shows. */
export async function onSignInPage(page: Page, server: TestServer): Promise<boolean> {
  await page.waitForURL((url) => url.pathname === '/', { timeout: 10_000 });
  await page.waitForSelector('body[data-ready="true"]');
  return page.getByRole('heading', { name: 'Sign in' }).isVisible();
}

/** Horizontal overflow of the page, in CSS pixels (0 = nothing to scroll sideways). */
export async function horizontalOverflow(page: Page): Promise<number> {
  // A string, evaluated in the page: the tests are type-checked without the DOM library.
  const overflow = await page.evaluate(
    'Math.max(document.scrollingElement.scrollWidth, document.body.scrollWidth) - document.scrollingElement.clientWidth',
  );
  return Number(overflow);
}

export interface Account {
  readonly uid: string;
  readonly username: string;
  readonly password: string;
}

export async function registerAccount(
  server: TestServer, username: string, name: string, password = 'correct horse battery', email?: string,
): Promise<Account> {
  const answer = await call(server, 'POST', '/v1/user/register', {
    username, password, name, email, flag: 0, device: { device_id: `${username}-phone`, device_name: `${name}’s phone`, device_model: 'Pixel 9' },
  });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return { uid: answer.body.uid, username, password };
}

/** Logs in over the API as the phone app (flag 0) and returns its token. */
export async function appToken(server: TestServer, account: Account): Promise<string> {
  const answer = await call(server, 'POST', '/v1/user/login', {
    username: account.username, password: account.password, flag: 0,
    device: { device_id: `${account.username}-phone`, device_name: 'Pixel 9', device_model: 'Google Pixel 9' },
  });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body.token as string;
}

/**
 * README screenshots. Written to docs/screenshots/ when UPDATE_SCREENSHOTS=1 (so a plain test run
 * never dirties the work tree), otherwise taken anyway (the code path stays tested) and dropped.
 */
export async function screenshot(page: Page, name: string, fullPage = false): Promise<void> {
  const image = await page.screenshot({ fullPage, animations: 'disabled', caret: 'hide' });
  assert.ok(image.length > 1000, 'a screenshot has content');
  if (process.env.UPDATE_SCREENSHOTS !== '1') return;
  const dir = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.png`), image);
}
