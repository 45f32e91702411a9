/**
 * `latchkey dev-idp`: runs the development OpenID provider and prints the `oidc` section that makes
 * latchkey use it. The token key is fresh each run; keep the one you pasted, it stays valid.
 */
import { randomBytes } from 'node:crypto';
import { DEV_ACCOUNTS, startDevIdp } from './dev-idp.ts';

const DEV_CLIENT_ID = 'latchkey-dev';
// A fixed, public secret: this IdP only ever listens on loopback, and a pasted config keeps working
// across restarts of it.
const DEV_CLIENT_SECRET = 'latchkey-dev-secret';

/** Returns -1: keeps running until SIGINT/SIGTERM. */
export async function devIdpCommand(portText: string | undefined, latchkeyText: string | undefined): Promise<number> {
  const port = portText === undefined ? 9090 : Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port ${portText}: expected a port number`);
  const latchkey = new URL(latchkeyText ?? 'http://127.0.0.1:8080').origin;
  const idp = await startDevIdp({
    port,
    clients: [{
      clientId: DEV_CLIENT_ID,
      clientSecret: DEV_CLIENT_SECRET,
      redirectUris: [`${latchkey}/v1/auth/oidc/dev/callback`],
      postLogoutRedirectUris: [`${latchkey}/`],
      backchannelLogoutUri: `${latchkey}/v1/auth/oidc/dev/backchannel_logout`,
    }],
    accounts: DEV_ACCOUNTS,
  });
  const config = {
    oidc: {
      providers: [{
        id: 'dev',
        name: 'Dev IdP',
        issuer: idp.issuer,
        client_id: DEV_CLIENT_ID,
        client_secret: DEV_CLIENT_SECRET,
        redirect_uri: `${latchkey}/v1/auth/oidc/dev/callback`,
        post_logout_redirect_uri: `${latchkey}/`,
        scopes: ['openid', 'profile', 'email', 'offline_access'],
        allow_insecure_http: true,
      }],
      token_key: { id: 'dev-1', key: randomBytes(32).toString('base64') },
    },
  };
  process.stdout.write(
    `dev IdP listening at ${idp.issuer} — user "alice", any password (development only)\n` +
    `Add this to latchkey's config file (--config FILE), start latchkey, then open\n` +
    `${latchkey}/v1/auth/oidc/dev/authorize\n\n${JSON.stringify(config, null, 2)}\n`,
  );
  const stop = () => {
    void idp.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return -1;
}
