/**
 * Hole 14 (part): the SSO binding cookie. A binding cookie the browser presented was reused as the
 * new login's binding secret, so an attacker who planted one (cookie tossing from a sibling
 * subdomain, or plain http where `__Host-` cannot be used) knew the secret that guards the
 * victim's handoff code, and with a leaked `lk_code` could exchange it. Now every login is bound
 * to a fresh secret the server made; earlier logins' secrets ride along in the cookie only when
 * this server signed them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { BindingCookies } from '../../src/flows/oidc/binding.ts';
import { cryptoRandom } from '../../src/ports/random.ts';
import { Browser, authorize, exchange, passIdp, ssoToCallback, startSsoWorld, visitCallback, type SsoWorld } from '../support/idp.ts';

describe('the SSO binding cookie cannot be fixed by another site', () => {
  let world: SsoWorld;
  before(async () => {
    world = await startSsoWorld();
  });
  after(async () => {
    await world.stop();
  });

  async function victimCode(victim: Browser): Promise<string> {
    const callback = await visitCallback(victim, await ssoToCallback(victim, world.server, 'ada'));
    assert.ok(callback.lkCode !== null, callback.location);
    return callback.lkCode;
  }

  it('a tossed attacker-chosen value is not the binding: the attacker\'s copy cannot exchange the code', async () => {
    const tossed = randomBytes(32).toString('base64url');
    const victim = new Browser();
    victim.plantCookie('lk_oidc', tossed);
    const code = await victimCode(victim);
    const attacker = new Browser();
    attacker.plantCookie('lk_oidc', tossed);
    const stolen = await Promise.all([exchange(attacker, world.server, code), exchange(attacker, world.server, code)]);
    assert.deepEqual(stolen.map((answer) => answer.status), [404, 404]);
    assert.ok(!(victim.cookie('lk_oidc') ?? '').includes(tossed), 'the planted value is dropped from the cookie');
    assert.equal((await exchange(victim, world.server, code)).status, 200);
  });

  it('a tossed value the server once issued to the attacker does not bind the victim\'s login either', async () => {
    const attacker = new Browser();
    assert.equal((await authorize(attacker, world.server)).status, 302);
    const issued = attacker.cookie('lk_oidc') ?? '';
    assert.notEqual(issued, '');
    const victim = new Browser();
    victim.plantCookie('lk_oidc', issued);
    const code = await victimCode(victim);
    assert.equal((await exchange(attacker, world.server, code)).status, 404);
    assert.equal((await exchange(victim, world.server, code)).status, 200);
  });

  it('a forged or re-signed value is ignored, and two tabs of one browser still both sign in', async () => {
    const browser = new Browser();
    browser.plantCookie('lk_oidc', `${randomBytes(32).toString('base64url')}.${Date.now().toString(36)}.${randomBytes(16).toString('base64url')}`);
    const tabs = await Promise.all([authorize(browser, world.server), authorize(browser, world.server)]);
    // The two tabs at once may each have been given a binding, the jar keeping one of them; two more
    // in order both find the binding the jar kept.
    const third = await authorize(browser, world.server);
    const fourth = await authorize(browser, world.server);
    const callbacks = [];
    for (const started of [...tabs, third, fourth]) {
      assert.equal(started.status, 302);
      callbacks.push(await visitCallback(browser, await passIdp(browser, started.headers.get('location') ?? '', 'grace')));
    }
    const last = callbacks.at(-1)?.lkCode ?? '';
    assert.equal((await exchange(browser, world.server, last)).status, 200, 'the newest tab');
    const second = callbacks.at(-2)?.lkCode ?? '';
    assert.equal((await exchange(browser, world.server, second)).status, 200, 'a tab started before it');
  });
});

describe('behind a TLS-terminating proxy (public_url https, trust_proxy off)', () => {
  let world: SsoWorld;
  before(async () => {
    world = await startSsoWorld({ server: { public_url: 'https://login.example.test' } });
  });
  after(async () => {
    await world.stop();
  });

  it('the binding cookie is __Host- and Secure although the connection is plain http, so a sibling subdomain cannot plant it', async () => {
    const started = await authorize(new Browser(), world.server);
    assert.equal(started.status, 302);
    const cookie = started.headers.get('set-cookie') ?? '';
    assert.match(cookie, /^__Host-lk_oidc=/);
    assert.match(cookie, /; Secure/);
  });
});

describe('BindingCookies', () => {
  const key = (id: string) => ({ id, key: randomBytes(32) });
  const [k1, k2] = [key('k1'), key('k2')];
  let now = Date.UTC(2026, 0, 1);
  const clock = { now: () => now };

  it('carries only entries this server signed, younger than the cookie, at most five', () => {
    const cookies = new BindingCookies([k1], clock, cryptoRandom);
    let value = '';
    const secrets: string[] = [];
    for (let i = 0; i < 7; i += 1) {
      const issued = cookies.issue(value === '' ? [] : [value]);
      value = issued.value;
      secrets.push(issued.secret);
    }
    assert.deepEqual(cookies.secrets([value]), secrets.slice(-5));
    assert.deepEqual(new BindingCookies([k2], clock, cryptoRandom).secrets([value]), [], 'another key signed nothing here');
    assert.deepEqual(new BindingCookies([k2, k1], clock, cryptoRandom).secrets([value]), secrets.slice(-5), 'a rotated-out key still verifies');
    const [secret, issuedAt] = value.split('~')[0]?.split('.') ?? [];
    assert.deepEqual(cookies.secrets([`${secret}.${issuedAt}.${randomBytes(16).toString('base64url')}`]), [], 'a forged MAC');
    assert.deepEqual(cookies.secrets([`${randomBytes(32).toString('base64url')}.${issuedAt}.${value.split('~')[0]?.split('.')[2]}`]), [], 'a MAC moved to another secret');
    now += 15 * 60 * 1000 + 1;
    assert.deepEqual(cookies.secrets([value]), [], 'older than the cookie\'s life');
  });
});
