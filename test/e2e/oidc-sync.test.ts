import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, startTestServer, type TestServer } from '../support/server.ts';
import {
  Browser, CLIENT_ID, CLIENT_SECRET, providerConfig, ssoLogin, startSsoWorld, storedRefreshToken, tokenKey, type SsoWorld,
} from '../support/idp.ts';

const clientAuth = `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`;

describe('OIDC sync worker, two nodes', () => {
  let dir: string;
  let world: SsoWorld;
  let other: TestServer;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-oidc-sync-'));
    const stores = { store: `sqlite:${join(dir, 'shared.db')}`, db: `sqlite:${join(dir, 'shared.db')}` };
    world = await startSsoWorld(stores);
    other = await startTestServer({
      ...stores,
      oidc: { providers: [providerConfig(world.idp.issuer, world.server.url)], token_key: tokenKey, sync_interval: 0 },
    });
  });
  after(async () => {
    await other?.stop();
    await world?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a refresh token revoked at the IdP ends that user\'s SSO sessions on the next run, once across nodes', async () => {
    const grace = await ssoLogin(new Browser(), world.server, 'grace');
    const ada = await ssoLogin(new Browser(), world.server, 'ada');
    const revoked = await fetch(`${world.idp.issuer}/token/revocation`, {
      method: 'POST',
      headers: { authorization: clientAuth, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: await storedRefreshToken(world, grace.sid), token_type_hint: 'refresh_token' }),
    });
    assert.equal(revoked.status, 200);
    assert.equal((await call(world.server, 'GET', '/v1/user/current', undefined, grace.token)).status, 200, 'nothing happens before the run');

    const quitter = await ssoLogin(new Browser(), world.server, 'linus');
    const quitterToken = await storedRefreshToken(world, quitter.sid);
    assert.equal((await call(world.server, 'POST', '/v1/user/quit', undefined, quitter.token)).status, 200);

    const tick = world.server.runtime.oidc.syncWorker.tickAt(Date.now());
    const outcomes = await Promise.all([world.server, other].map((node) => node.runtime.oidc.syncWorker.runTick(tick)));
    assert.deepEqual(outcomes.sort(), ['ran', 'tick_taken'], 'exactly one node processes the tick');
    assert.equal(await other.runtime.oidc.syncWorker.runTick(tick), 'tick_taken', 'and nobody runs it again');

    assert.equal((await call(world.server, 'GET', '/v1/user/current', undefined, grace.token)).status, 401, 'the IdP refused the grant');
    assert.equal((await call(world.server, 'GET', '/v1/user/current', undefined, ada.token)).status, 200, 'other users are untouched');
    const audit = await world.server.runtime.accounts.queryAudit({ type: 'oidc_sync', limit: 5 });
    assert.deepEqual(audit.map((e) => [e.uid, e.reason]), [[grace.uid, 'corp:invalid_grant:1']]);

    const introspection = await fetch(`${world.idp.issuer}/token/introspection`, {
      method: 'POST',
      headers: { authorization: clientAuth, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: quitterToken }),
    });
    assert.equal(((await introspection.json()) as { active: boolean }).active, false, 'a token whose session ended is revoked, not refreshed');

    assert.equal(await other.runtime.oidc.syncWorker.runTick(tick + 1), 'ran', 'the next tick runs on whichever node claims it');
    assert.equal((await call(world.server, 'GET', '/v1/user/current', undefined, ada.token)).status, 200, 'a good refresh token keeps its sessions');
  });
});
