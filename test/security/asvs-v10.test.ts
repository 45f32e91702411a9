/**
 * OWASP ASVS 5.0, chapter V10 (OAuth and OIDC), the relying-party requirements that had no test of
 * their own, against a real OpenID provider (oidc-provider). docs/security.md §5 maps the rest.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { SignJWT, importJWK } from 'jose';
import { readLink } from '../../src/flows/oidc/session-links.ts';
import {
  Browser, CLIENT_ID, PROVIDER, authorize, ssoLogin, providerConfig, ssoToCallback, startSsoWorld, tokenKey, visitCallback, type SsoWorld,
} from '../support/idp.ts';
import { call, startTestServer, type TestServer } from '../support/server.ts';

describe('ASVS V10: latchkey as an OpenID Connect relying party', () => {
  let world: SsoWorld;
  before(async () => {
    world = await startSsoWorld();
  });
  after(async () => {
    await world.stop();
  });

  it('10.2.2: an authorization response naming another issuer (a mix-up) is refused', async () => {
    const browser = new Browser();
    const url = new URL(await ssoToCallback(browser, world.server, 'ada'));
    // The IdP identifies itself in the response (RFC 9207); a mix-up attacker's would not match.
    assert.equal(url.searchParams.get('iss'), world.idp.issuer);
    url.searchParams.set('iss', 'https://attacker.example');
    const callback = await visitCallback(browser, url.href);
    assert.equal(callback.lkCode, null, callback.location);
    assert.equal(callback.oidcError, 'login_failed');
  });

  it('10.5.5: a logout token typed as anything but logout+jwt is refused; untyped and typed ones end the session', async () => {
    const sign = async (sid: string, typ: string | undefined) =>
      new SignJWT({ events: { 'http://schemas.openid.net/event/backchannel-logout': {} }, jti: randomUUID(), sid })
        .setProtectedHeader({ alg: 'RS256', kid: world.signingKey.kid ?? '', ...(typ === undefined ? {} : { typ }) })
        .setIssuer(world.idp.issuer)
        .setAudience(CLIENT_ID)
        .setIssuedAt()
        .sign(await importJWK(world.signingKey, 'RS256'));
    const post = (token: string) => fetch(`${world.server.url}/v1/auth/oidc/${PROVIDER}/backchannel_logout`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ logout_token: token }),
    });
    const alive = async (token: string) => (await call(world.server, 'GET', '/v1/user/current', undefined, token)).status === 200;
    for (const typ of ['JWT', 'at+jwt', 'id_token+jwt']) {
      const login = await ssoLogin(new Browser(), world.server, 'ada');
      const idpSid = (await readLink(world.server.runtime.kv, login.sid))?.idpSid ?? '';
      assert.equal((await post(await sign(idpSid, typ))).status, 400, typ);
      assert.equal(await alive(login.token), true, `${typ}: the session survives`);
    }
    for (const typ of ['logout+jwt', 'application/logout+jwt', undefined]) {
      const login = await ssoLogin(new Browser(), world.server, 'ada');
      const idpSid = (await readLink(world.server.runtime.kv, login.sid))?.idpSid ?? '';
      assert.equal((await post(await sign(idpSid, typ))).status, 200, String(typ));
      assert.equal(await alive(login.token), false, `${String(typ)}: the session ended`);
    }
  });

  it('10.2.1 and 10.1.2: the authorization request carries state, nonce and an S256 PKCE challenge, each fresh', async () => {
    const locations = await Promise.all([0, 1].map(async () => {
      const started = await authorize(new Browser(), world.server);
      assert.equal(started.status, 302);
      return new URL(started.headers.get('location') ?? '');
    }));
    for (const location of locations) {
      assert.equal(location.searchParams.get('code_challenge_method'), 'S256');
      for (const name of ['state', 'nonce', 'code_challenge']) {
        assert.ok((location.searchParams.get(name) ?? '').length >= 43, `${name} carries at least 256 bits`);
      }
    }
    const [a, b] = locations;
    for (const name of ['state', 'nonce', 'code_challenge']) {
      assert.notEqual(a?.searchParams.get(name), b?.searchParams.get(name), `${name} is per login`);
    }
  });
});

describe('ASVS 10.5.3: provider metadata must name the configured issuer', () => {
  let world: SsoWorld;
  let impostor: TestServer;
  before(async () => {
    // The same IdP, configured under another spelling of its own issuer: its metadata names the real one.
    world = await startSsoWorld();
    const misnamed = world.idp.issuer.replace('127.0.0.1', 'localhost');
    impostor = await startTestServer({
      oidc: { providers: [providerConfig(misnamed, 'http://127.0.0.1:1')], token_key: tokenKey, sync_interval: 0, rate_limit: { max: 100_000 } },
    });
  });
  after(async () => {
    await impostor.stop();
    await world.stop();
  });

  it('metadata whose issuer differs from the configured one is not used: no login starts', async () => {
    const started = await new Browser().request(`${impostor.url}/v1/auth/oidc/${PROVIDER}/authorize`);
    assert.equal(started.status, 503);
    assert.equal(((await started.json()) as { code: string }).code, 'upstream_unavailable');
    // The same IdP under its own name works: the refusal is the name, not the network.
    assert.equal((await authorize(new Browser(), world.server)).status, 302);
  });
});
