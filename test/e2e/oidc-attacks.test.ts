import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { call } from '../support/server.ts';
import {
  Browser, PROVIDER, authorize, exchange, passIdp, ssoToCallback, startSsoWorld, visitCallback, type SsoWorld,
} from '../support/idp.ts';

describe('OIDC SSO refuses the known attacks', () => {
  let world: SsoWorld;
  before(async () => {
    world = await startSsoWorld();
  });
  after(async () => {
    await world.stop();
  });

  const callbackUrl = (query: Record<string, string>) => `${world.server.url}/v1/auth/oidc/${PROVIDER}/callback?${new URLSearchParams(query)}`;

  it('a replayed callback (state already used) is refused', async () => {
    const browser = new Browser();
    const url = await ssoToCallback(browser, world.server, 'ada');
    const first = await visitCallback(browser, url);
    assert.ok(first.lkCode !== null, first.location);
    const replay = await browser.request(url);
    assert.equal(replay.status, 400);
    assert.equal(((await replay.json()) as { details: { field: string } }).details.field, 'state');
  });

  it('an unknown state is refused before anything reaches the IdP', async () => {
    const response = await new Browser().request(callbackUrl({ state: randomBytes(32).toString('base64url'), code: 'x' }));
    assert.equal(response.status, 400);
    assert.equal((await new Browser().request(callbackUrl({ code: 'x' }))).status, 400, 'no state at all');
  });

  it('an ID token with another nonce is refused', async () => {
    const browser = new Browser();
    const started = await authorize(browser, world.server, { return_to: '/here' });
    const tampered = new URL(started.headers.get('location') ?? '');
    tampered.searchParams.set('nonce', randomBytes(32).toString('base64url'));
    const callback = await visitCallback(browser, await passIdp(browser, tampered.href, 'ada'));
    assert.equal(callback.location, '/here?oidc_error=login_failed');
    const audit = await world.server.runtime.accounts.queryAudit({ type: 'oidc_callback', limit: 1 });
    assert.match(audit[0]?.reason ?? '', /token_invalid/);
  });

  it('a code swapped into another login\'s callback is refused (PKCE and state bind it)', async () => {
    const browser = new Browser();
    const victim = new URL(await ssoToCallback(browser, world.server, 'ada'));
    const attacker = new URL(await ssoToCallback(new Browser(), world.server, 'grace'));
    const swapped = new URL(victim);
    swapped.searchParams.set('code', attacker.searchParams.get('code') ?? '');
    const callback = await visitCallback(browser, swapped.href);
    assert.equal(callback.lkCode, null);
    assert.equal(callback.oidcError, 'login_failed');
  });

  it('the handoff code works once, only with the cookie of the browser that started it', async () => {
    const browser = new Browser();
    const callback = await visitCallback(browser, await ssoToCallback(browser, world.server, 'ada'));
    const code = callback.lkCode ?? '';
    const noCookie = await call(world.server, 'POST', `/v1/auth/oidc/${PROVIDER}/exchange`, { lk_code: code });
    assert.equal(noCookie.status, 404);
    const other = new Browser();
    await authorize(other, world.server);
    assert.ok(other.cookie('lk_oidc') !== undefined && other.cookie('lk_oidc') !== browser.cookie('lk_oidc'));
    assert.equal((await exchange(other, world.server, code)).status, 404, 'another browser\'s cookie');

    const login = await exchange(browser, world.server, code);
    assert.equal(login.status, 200, JSON.stringify(login.body));
    const twice = await exchange(browser, world.server, code);
    assert.equal(twice.status, 410);
    assert.equal(twice.body.code, 'expired');
    assert.equal((await exchange(browser, world.server, randomBytes(32).toString('base64url'))).status, 404, 'unknown code');
  });

  for (const returnTo of ['//evil.test', '/\\evil.test', 'https://evil.test', 'javascript:alert(1)', 'https://app.test.evil.test/', '/ok\nLocation: x']) {
    it(`return_to ${JSON.stringify(returnTo)} is refused`, async () => {
      const response = await authorize(new Browser(), world.server, { return_to: returnTo });
      assert.equal(response.status, 400);
      assert.equal(response.headers.get('location'), null);
      assert.equal(((await response.json()) as { details: { field: string } }).details.field, 'return_to');
    });
  }

  it('return_to on a listed host, or a relative path, is accepted', async () => {
    assert.equal((await authorize(new Browser(), world.server, { return_to: 'https://app.test/after?x=1' })).status, 302);
    assert.equal((await authorize(new Browser(), world.server, { return_to: '/after#frag' })).status, 302);
  });

  it('a flag outside 0-2 and a malformed app_challenge are 400s', async () => {
    assert.equal((await authorize(new Browser(), world.server, { flag: '7' })).status, 400);
    assert.equal((await authorize(new Browser(), world.server, { app_challenge: 'short' })).status, 400);
  });
});
