/**
 * Passkeys in a real browser (docs/api.md §14): Chromium with a virtual platform authenticator (the
 * DevTools Protocol's WebAuthn domain: CTAP2, internal transport, resident keys, user verified)
 * registers a passkey through latchkey's options, the session signs out, the passkey alone signs in
 * again, and removing it ends its use and the sessions it signed in. The page is latchkey's own
 * origin on `localhost` (a secure context, and the default rp id), where `navigator.credentials`
 * runs against the API with fetch.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { call, startTestServer, type TestServer } from '../support/server.ts';
import { launchChromium, onSignInPage, openConsole, signInWithPassword, skipUnlessChromium } from '../support/browser.ts';

const PASSWORD = 'correct horse battery';

/** Runs in the page: the WebAuthn ceremonies against latchkey's routes, with the JSON helpers the API expects. */
async function ceremony(page: Page, kind: 'register' | 'login', token?: string): Promise<{ status: number; body: any }> {
  return page.evaluate(async ({ kind, token }) => {
    const decode = (s: string): ArrayBuffer => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0)).buffer;
    const post = async (path: string, body?: unknown) => {
      const headers: Record<string, string> = {};
      if (token !== undefined) headers.token = token;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const answer = await fetch(path, { method: 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: answer.status, body: await answer.json() };
    };
    // The page's globals: the test's TypeScript has no DOM library.
    const credentials = (globalThis as any).navigator.credentials;
    const options = await post(`/v1/user/passkeys/${kind}/options`);
    if (options.status !== 200) return options;
    const o: any = options.body;
    if (kind === 'register') {
      const credential = await credentials.create({
        publicKey: {
          ...o,
          challenge: decode(o.challenge),
          user: { ...o.user, id: decode(o.user.id) },
          excludeCredentials: (o.excludeCredentials ?? []).map((c: any) => ({ ...c, id: decode(c.id) })),
        },
      });
      return post('/v1/user/passkeys/register/verify', { ...credential.toJSON(), name: 'Chromium' });
    }
    const credential = await credentials.get({
      publicKey: { ...o, challenge: decode(o.challenge), allowCredentials: [] },
    });
    return post('/v1/user/passkeys/login/verify', { ...credential.toJSON(), flag: 1, device: { device_id: 'chromium', device_name: 'Chromium', device_model: 'test' } });
  }, { kind, token });
}

describe('passkeys in Chromium with a virtual authenticator', { skip: skipUnlessChromium() }, () => {
  let server: TestServer;
  let browser: Browser;
  before(async () => {
    server = await startTestServer({ mfa: { step_up_seconds: 30 } });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('registers a passkey, signs out, signs in with the passkey alone, removes it', async () => {
    const registered = await call(server, 'POST', '/v1/user/register', { username: 'chromium-pk', password: PASSWORD });
    assert.equal(registered.status, 201);
    const context = await browser.newContext();
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
    });
    // latchkey's own origin, on localhost: the default rp id and origin.
    await page.goto(`${server.url.replace('127.0.0.1', 'localhost')}/healthz`);

    const created = await ceremony(page, 'register', registered.body.token);
    assert.equal(created.status, 200, JSON.stringify(created.body));
    assert.equal(created.body.name, 'Chromium');
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(credentials.length, 1);
    assert.equal(credentials[0]!.isResidentCredential, true);
    assert.equal(credentials[0]!.rpId, 'localhost');

    assert.equal((await call(server, 'POST', '/v1/user/quit', undefined, registered.body.token)).status, 200);
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, registered.body.token)).status, 401, 'signed out');

    const signedIn = await ceremony(page, 'login');
    assert.equal(signedIn.status, 200, JSON.stringify(signedIn.body));
    assert.equal(signedIn.body.uid, registered.body.uid);
    const current = await call(server, 'GET', '/v1/user/current', undefined, signedIn.body.token);
    assert.deepEqual([current.body.session.method, current.body.session.device_name], ['passkey', 'Chromium']);

    // The passkey session is proven: it removes the passkey without stepping up, and ends with it.
    const removed = await call(server, 'DELETE', `/v1/user/passkeys/${created.body.id}`, undefined, signedIn.body.token);
    assert.deepEqual([removed.status, removed.body.revoked], [200, 1]);
    const ended = await call(server, 'GET', '/v1/user/current', undefined, signedIn.body.token);
    assert.deepEqual([ended.status, ended.body.details?.reason], [401, 'passkey_removed']);
    const refused = await ceremony(page, 'login');
    assert.deepEqual([refused.status, refused.body.code], [401, 'invalid_credentials'], 'the authenticator still holds it; latchkey no longer does');
    await context.close();
  });

  it('the console: add a passkey on the account page, rename it, sign out, sign in with it, remove it', async () => {
    assert.equal((await call(server, 'POST', '/v1/user/register', { username: 'console-pk', password: PASSWORD })).status, 201);
    // The console on localhost: the default rp id, and a secure context.
    const local = { ...server, url: server.url.replace('127.0.0.1', 'localhost') };
    const { page, context, assertClean } = await openConsole(browser, local);
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
    });
    await signInWithPassword(page, local, 'console-pk', PASSWORD);
    const card = page.locator('#passkeys-card');
    await card.getByText('No passkeys yet.').waitFor();
    await card.getByRole('button', { name: 'Add a passkey' }).click();
    await card.getByText('Passkey added.').waitFor();
    assert.equal((await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials.length, 1);
    const items = card.locator('#passkeys li[data-passkey]');
    // The notice may show before the list is drawn again: wait for the item, then count.
    await items.first().waitFor();
    assert.equal(await items.count(), 1);
    assert.match(await items.first().innerText(), /Never used/);

    await items.first().getByRole('button', { name: /^Rename / }).click();
    await card.getByRole('textbox', { name: 'Name' }).fill('Work laptop');
    await card.getByRole('button', { name: 'Save' }).click();
    await card.getByText('Passkey renamed.').waitFor();
    await card.locator('#passkeys .item-title', { hasText: 'Work laptop' }).waitFor();

    await page.getByRole('button', { name: 'Sign out' }).first().click();
    assert.ok(await onSignInPage(page, local));
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await page.waitForURL(`${local.url}/account`);
    await page.waitForSelector('body[data-ready="true"]');
    await card.locator('#passkeys .item-title', { hasText: 'Work laptop' }).waitFor();
    await page.locator('#activity').getByText('Signed in with a passkey').first().waitFor();

    await card.getByRole('button', { name: 'Remove Work laptop' }).click();
    await page.getByText('every device signed in with it is signed out (this one too, if you signed in with it)').waitFor();
    await page.locator('#confirm-yes').click();
    // This console signed in with that passkey: removing it signs the console out, and it says why.
    assert.ok(await onSignInPage(page, local));
    assert.match(await page.locator('#notice').innerText(), /^Signed out: the passkey you signed in with was removed at \d\d?:\d\d\b/);
    await signInWithPassword(page, local, 'console-pk', PASSWORD);
    await card.getByText('No passkeys yet.').waitFor();
    assertClean();
    await context.close();
  });

  it('the console asks for the password before adding a passkey once the sign-in is no longer recent', async () => {
    assert.equal((await call(server, 'POST', '/v1/user/register', { username: 'console-pk-stepup', password: PASSWORD })).status, 201);
    const local = { ...server, url: server.url.replace('127.0.0.1', 'localhost') };
    const { page, context, assertClean } = await openConsole(browser, local);
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
    });
    await signInWithPassword(page, local, 'console-pk-stepup', PASSWORD);
    // Past mfa.step_up_seconds (30 here, the least allowed) since the password sign-in.
    await new Promise((resolve) => setTimeout(resolve, 31_000));
    const card = page.locator('#passkeys-card');
    await card.getByRole('button', { name: 'Add a passkey' }).click();
    const form = card.locator('#passkey-stepup-form');
    await form.waitFor({ state: 'visible' });
    await form.getByLabel('Password').fill('not the password');
    await form.getByRole('button', { name: 'Confirm' }).click();
    await card.getByText('That password is not right.').waitFor();
    await form.getByLabel('Password').fill(PASSWORD);
    await form.getByRole('button', { name: 'Confirm' }).click();
    await card.getByText('Passkey added.').waitFor();
    assert.equal(await form.isVisible(), false);
    await card.locator('#passkeys li[data-passkey]').first().waitFor();
    assert.equal(await card.locator('#passkeys li[data-passkey]').count(), 1);
    assertClean();
    await context.close();
  });
});
