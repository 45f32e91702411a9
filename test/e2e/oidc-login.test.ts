import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { call } from '../support/server.ts';
import { Browser, PROVIDER, authorize, exchange, passIdp, ssoLogin, ssoToCallback, startSsoWorld, visitCallback, type SsoWorld } from '../support/idp.ts';

describe('OIDC SSO login against a real OpenID provider', () => {
  let world: SsoWorld;
  before(async () => {
    world = await startSsoWorld();
  });
  after(async () => {
    await world.stop();
  });

  it('authorize → IdP login and consent → callback → exchange → a working token', async () => {
    const browser = new Browser();
    const started = await authorize(browser, world.server, { return_to: '/app/home?tab=1', flag: '1' });
    assert.equal(started.status, 302);
    const location = new URL(started.headers.get('location') ?? '');
    assert.equal(location.origin, world.idp.issuer);
    assert.equal(location.searchParams.get('code_challenge_method'), 'S256');
    assert.ok(location.searchParams.get('state') && location.searchParams.get('nonce') && location.searchParams.get('code_challenge'));
    const setCookie = started.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /^lk_oidc=[A-Za-z0-9_-]{43}\.[0-9a-z]+\.[A-Za-z0-9_-]{22}; Max-Age=\d+; Path=\/; HttpOnly; SameSite=Lax$/);

    const callbackUrl = await passIdp(browser, location.href, 'ada');
    const callback = await visitCallback(browser, callbackUrl);
    assert.equal(callback.status, 302);
    assert.match(callback.location, /^\/app\/home\?tab=1&lk_code=[A-Za-z0-9_-]{43}$/);
    const login = await exchange(browser, world.server, callback.lkCode ?? '');
    assert.equal(login.status, 200, JSON.stringify(login.body));
    assert.equal(login.body.device_flag, 1);
    assert.equal(login.body.username, 'ada');
    assert.equal(login.body.name, 'Ada Lovelace');
    const current = await call(world.server, 'GET', '/v1/user/current', undefined, login.body.token);
    assert.equal(current.status, 200);
    assert.equal(current.body.session.method, 'oidc');
    assert.equal(current.body.email, 'ada@corp.test');

    const again = await ssoLogin(new Browser(), world.server, 'ada');
    assert.equal(again.uid, login.body.uid, 'the second login finds the account');
    assert.notEqual(again.token, login.body.token);
  });

  it('links to the account with the same email only when the IdP verified it', async () => {
    const grace = await call(world.server, 'POST', '/v1/user/register', { username: 'gracie', password: 'long enough password', email: 'Grace@corp.test' });
    const victim = await call(world.server, 'POST', '/v1/user/register', { username: 'victim', password: 'long enough password', email: 'victim@corp.test' });
    assert.equal(grace.status, 201);
    assert.equal(victim.status, 201);
    // gracie proved her address (POST /v1/user/verify_address); victim's is only typed in, so it links nothing.
    await world.server.runtime.accounts.markVerified(grace.body.uid, { channel: 'email', email: 'grace@corp.test' }, Date.now());

    const linked = await ssoLogin(new Browser(), world.server, 'grace');
    assert.equal(linked.uid, grace.body.uid, 'verified email links the existing account');
    assert.equal(linked.username, 'gracie');

    const mallory = await ssoLogin(new Browser(), world.server, 'mallory');
    assert.notEqual(mallory.uid, victim.body.uid, 'an unverified email never links');
    const created = await call(world.server, 'GET', '/v1/user/current', undefined, mallory.token);
    assert.equal(created.body.email ?? null, null, 'nor is it stored on the new account');
  });

  it('two concurrent first logins of the same IdP user make one account', async () => {
    const [first, second] = [new Browser(), new Browser()];
    const callbacks = [await ssoToCallback(first, world.server, 'linus'), await ssoToCallback(second, world.server, 'linus')];
    const [a, b] = await Promise.all([visitCallback(first, callbacks[0] ?? ''), visitCallback(second, callbacks[1] ?? '')]);
    const [loginA, loginB] = await Promise.all([exchange(first, world.server, a.lkCode ?? ''), exchange(second, world.server, b.lkCode ?? '')]);
    assert.equal(loginA.status, 200, JSON.stringify(loginA.body));
    assert.equal(loginB.status, 200, JSON.stringify(loginB.body));
    assert.equal(loginA.body.uid, loginB.body.uid);
    const { users } = await world.server.runtime.accounts.listUsers({ query: 'linus@corp.test', offset: 0, limit: 10 });
    assert.equal(users.length, 1, 'no ghost user');
  });

  it('a native app binds the login to its verifier instead of a cookie', async () => {
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const app = new Browser();
    const started = await authorize(app, world.server, { app_challenge: challenge, flag: '0', return_to: 'https://app.test/sso' });
    assert.equal(started.status, 302);
    assert.equal(started.headers.get('set-cookie'), null, 'no cookie for an app');
    const callback = await visitCallback(app, await passIdp(app, started.headers.get('location') ?? '', 'ada'));
    assert.match(callback.location, /^https:\/\/app\.test\/sso\?lk_code=/);
    assert.equal((await exchange(app, world.server, callback.lkCode ?? '', randomBytes(32).toString('base64url'))).status, 404);
    assert.equal((await exchange(app, world.server, callback.lkCode ?? '')).status, 404, 'without the verifier');
    const login = await exchange(new Browser(), world.server, callback.lkCode ?? '', verifier);
    assert.equal(login.status, 200, JSON.stringify(login.body));
    assert.equal(login.body.device_flag, 0);
  });

  it('appconfig lists the provider', async () => {
    const answer = await call(world.server, 'GET', '/v1/common/appconfig');
    assert.deepEqual(answer.body.oidc_providers, [{ id: PROVIDER, name: 'Corp SSO', authorize_path: `/v1/auth/oidc/${PROVIDER}/authorize` }]);
  });

  it('an unknown provider is a 404', async () => {
    assert.equal((await call(world.server, 'GET', '/v1/auth/oidc/nope/authorize')).status, 404);
  });
});
