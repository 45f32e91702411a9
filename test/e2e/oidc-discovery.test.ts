import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startDevIdp, type DevIdp } from '../../src/dev-idp.ts';
import { freePort } from '../support/processes.ts';
import { startTestServer } from '../support/server.ts';
import { Browser, CLIENT_ID, CLIENT_SECRET, PROVIDER, TEST_ACCOUNTS, authorize, providerConfig, tokenKey } from '../support/idp.ts';

describe('OIDC discovery', () => {
  it('an IdP that is down at start is found once it is up, without a restart', async () => {
    const [idpPort, port] = [await freePort(), await freePort()];
    const issuer = `http://127.0.0.1:${idpPort}`;
    const url = `http://127.0.0.1:${port}`;
    const server = await startTestServer({
      port,
      oidc: { providers: [providerConfig(issuer, url)], token_key: tokenKey, sync_interval: 0, rate_limit: { max: 100_000 } },
    });
    let idp: DevIdp | undefined;
    try {
      const down = await authorize(new Browser(), server);
      assert.equal(down.status, 503);
      assert.equal(((await down.json()) as { code: string }).code, 'upstream_unavailable');
      const appconfig = await (await fetch(`${url}/v1/common/appconfig`)).json() as { oidc_providers: unknown[] };
      assert.equal(appconfig.oidc_providers.length, 1, 'still offered: it answers 503, not 404');

      idp = await startDevIdp({
        port: idpPort,
        clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [`${url}/v1/auth/oidc/${PROVIDER}/callback`], postLogoutRedirectUris: [] }],
        accounts: TEST_ACCOUNTS,
      });
      const up = await authorize(new Browser(), server);
      assert.equal(up.status, 302);
      assert.ok(up.headers.get('location')?.startsWith(`${issuer}/auth?`));
    } finally {
      await server.stop();
      await idp?.close();
    }
  });
});
