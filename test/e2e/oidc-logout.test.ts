import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair } from 'jose';
import { call } from '../support/server.ts';
import { Browser, CLIENT_ID, CLIENT_SECRET, logoutToken, PROVIDER, ssoLogin, startSsoWorld, storedRefreshToken, type SsoWorld } from '../support/idp.ts';
import { readLink } from '../../src/flows/oidc/session-links.ts';

const clientAuth = `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`;

/** What the IdP's introspection endpoint says about a token (RFC 7662). */
async function introspect(world: SsoWorld, token: string): Promise<{ active: boolean }> {
  const response = await fetch(`${world.idp.issuer}/token/introspection`, {
    method: 'POST',
    headers: { authorization: clientAuth, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }),
  });
  assert.equal(response.status, 200);
  return response.json() as Promise<{ active: boolean }>;
}

const isValid = async (world: SsoWorld, token: string): Promise<boolean> =>
  (await call(world.server, 'GET', '/v1/user/current', undefined, token)).status === 200;

const postLogoutToken = (world: SsoWorld, token: string): Promise<Response> =>
  fetch(`${world.server.url}/v1/auth/oidc/${PROVIDER}/backchannel_logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: token }),
  });

describe('OIDC SSO logout', () => {
  let world: SsoWorld;
  before(async () => {
    world = await startSsoWorld();
  });
  after(async () => {
    await world.stop();
  });

  it('ends the session, revokes the refresh token at the IdP, and returns its end-session URL', async () => {
    const login = await ssoLogin(new Browser(), world.server, 'ada');
    const refreshToken = await storedRefreshToken(world, login.sid);
    assert.equal((await introspect(world, refreshToken)).active, true);

    const answer = await call(world.server, 'POST', `/v1/auth/oidc/${PROVIDER}/logout`, undefined, login.token);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.idp_token_revoked, true);
    assert.equal(await isValid(world, login.token), false, 'the token is dead');
    assert.equal((await introspect(world, refreshToken)).active, false, 'the refresh token is revoked at the IdP');

    const endSession = new URL(answer.body.end_session_url);
    assert.equal(`${endSession.origin}${endSession.pathname}`, `${world.idp.issuer}/session/end`);
    assert.equal(endSession.searchParams.get('post_logout_redirect_uri'), `${world.server.url}/signed-out`);
    assert.equal(endSession.searchParams.get('client_id'), CLIENT_ID);
    assert.equal(endSession.searchParams.get('id_token_hint')?.split('.').length, 3);

    const metrics = await (await fetch(`${world.server.metricsUrl}`)).text();
    assert.match(metrics, /latchkey_oidc_logout_total\{result="ok"\} 1\n/);
    assert.match(metrics, /latchkey_oidc_logout_total\{result="idp_revoke_fail"\} 0\n/);
  });

  it('an IdP that cannot revoke is counted as idp_revoke_fail, and the session still ends', async () => {
    const login = await ssoLogin(new Browser(), world.server, 'grace');
    // The stored token no longer opens (as after losing its key): the IdP cannot be told.
    const link = await readLink(world.server.runtime.kv, login.sid);
    const stored = await world.server.runtime.oidc.identities.findRefreshToken(link?.refreshTokenId ?? '');
    assert.ok(stored !== null);
    await world.server.runtime.oidc.identities.replaceRefreshToken(stored.id, stored.sealed, 'v1.gone.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA', 1);
    const answer = await call(world.server, 'POST', `/v1/auth/oidc/${PROVIDER}/logout`, undefined, login.token);
    assert.equal(answer.status, 200);
    assert.equal(answer.body.idp_token_revoked, false);
    assert.equal(await isValid(world, login.token), false);
    const metrics = await (await fetch(`${world.server.metricsUrl}`)).text();
    assert.match(metrics, /latchkey_oidc_logout_total\{result="idp_revoke_fail"\} 1\n/);
  });
});

describe('OIDC back-channel logout', () => {
  let world: SsoWorld;
  before(async () => {
    world = await startSsoWorld();
  });
  after(async () => {
    await world.stop();
  });

  it('ending the IdP session revokes its latchkey sessions and leaves other IdP sessions\' alone', async () => {
    const laptop = new Browser();
    const phone = new Browser();
    const onLaptop = await ssoLogin(laptop, world.server, 'linus');
    const onPhone = await ssoLogin(phone, world.server, 'linus');
    assert.equal(onLaptop.uid, onPhone.uid);

    // The user signs out at the IdP itself, on the laptop: its confirmation form, then the back channel.
    const confirm = await laptop.request(`${world.idp.issuer}/session/end`);
    const html = await confirm.text();
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    assert.ok(xsrf !== undefined && action !== undefined, html.slice(0, 400));
    const ended = await laptop.request(new URL(action, world.idp.issuer).href, { form: { xsrf, logout: 'yes' } });
    assert.ok(ended.status === 303 || ended.status === 302 || ended.status === 200, String(ended.status));
    assert.ok(world.outbound.some((r) => r.url.endsWith('/backchannel_logout')), 'the IdP called the back channel');

    assert.equal(await isValid(world, onLaptop.token), false, 'the laptop session is revoked');
    assert.equal(await isValid(world, onPhone.token), true, 'the phone\'s IdP session is another one');
  });

  it('a logout_token is acted on once; a replay is acknowledged and ignored', async () => {
    const browser = new Browser();
    const first = await ssoLogin(browser, world.server, 'ada');
    const idpSid = (await readLink(world.server.runtime.kv, first.sid))?.idpSid;
    assert.ok(typeof idpSid === 'string');
    const token = await logoutToken(world, { sid: idpSid });

    const accepted = await postLogoutToken(world, token);
    assert.equal(accepted.status, 200);
    assert.equal(accepted.headers.get('cache-control'), 'no-store');
    assert.equal(await isValid(world, first.token), false);

    // The same browser signs in again within the same IdP session: a new latchkey session, same sid.
    const second = await ssoLogin(browser, world.server, 'ada');
    assert.equal((await readLink(world.server.runtime.kv, second.sid))?.idpSid, idpSid);
    const replayed = await postLogoutToken(world, token);
    assert.equal(replayed.status, 200);
    assert.equal(await isValid(world, second.token), true, 'the replay did nothing');
  });

  it('a token signed by another key, or without the logout event, or with a nonce, is refused', async () => {
    const login = await ssoLogin(new Browser(), world.server, 'grace');
    const idpSid = (await readLink(world.server.runtime.kv, login.sid))?.idpSid;
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    const forgedKey = { ...(await exportJWK(privateKey)), kid: world.signingKey.kid };
    for (const token of [
      await logoutToken(world, { sid: idpSid }, forgedKey),
      await logoutToken(world, { sid: idpSid, events: {} }),
      await logoutToken(world, { sid: idpSid, nonce: 'n' }),
      await logoutToken(world, {}),
      'not.a.jwt',
    ]) {
      const answer = await postLogoutToken(world, token);
      assert.equal(answer.status, 400, token.slice(0, 40));
    }
    assert.equal(await isValid(world, login.token), true);
  });

  it('a sub-only token ends every session of that user from this IdP', async () => {
    const a = await ssoLogin(new Browser(), world.server, 'mallory');
    const b = await ssoLogin(new Browser(), world.server, 'mallory');
    const answer = await postLogoutToken(world, await logoutToken(world, { sub: 'mallory' }));
    assert.equal(answer.status, 200);
    assert.equal(await isValid(world, a.token), false);
    assert.equal(await isValid(world, b.token), false);
  });
});
