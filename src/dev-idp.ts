/**
 * `latchkey dev-idp`: a local OpenID provider (oidc-provider 9, its built-in development login and
 * consent pages) with a test user, so SSO can be tried in a minute without a company IdP. The tests
 * run the same provider. Development only: any password is accepted, state lives in memory.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider, { type AccountClaims } from 'oidc-provider';

export interface DevIdpClient {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly redirectUris: readonly string[];
  readonly postLogoutRedirectUris: readonly string[];
  readonly backchannelLogoutUri?: string | undefined;
}

export interface DevIdpOptions {
  readonly host?: string;
  /** 0 = any free port. */
  readonly port?: number;
  readonly clients: readonly DevIdpClient[];
  /** Login name → claims (sub defaults to the login name). */
  readonly accounts: Readonly<Record<string, Omit<AccountClaims, 'sub'> & { readonly sub?: string }>>;
  /** Private signing keys (JWK with kid); generated when absent. */
  readonly signingKeys?: readonly JWK[];
  /** Sees every request the provider makes (back-channel logout); defaults to fetch. */
  readonly outboundFetch?: (url: string, init: RequestInit) => Promise<Response>;
}

export interface DevIdp {
  readonly issuer: string;
  readonly provider: Provider;
  close(): Promise<void>;
}

export const DEV_ACCOUNTS: DevIdpOptions['accounts'] = {
  alice: { name: 'Alice Example', email: 'alice@example.test', email_verified: true, preferred_username: 'alice' },
};

export async function generateSigningKey(kid: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
}

export async function startDevIdp(options: DevIdpOptions): Promise<DevIdp> {
  const host = options.host ?? '127.0.0.1';
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const outbound = options.outboundFetch ?? ((url, init) => fetch(url, init));
  const provider = new Provider(issuer, {
    clients: options.clients.map((c) => ({
      client_id: c.clientId,
      client_secret: c.clientSecret,
      redirect_uris: [...c.redirectUris],
      post_logout_redirect_uris: [...c.postLogoutRedirectUris],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      ...(c.backchannelLogoutUri === undefined ? {} : { backchannel_logout_uri: c.backchannelLogoutUri, backchannel_logout_session_required: true }),
    })),
    async findAccount(_ctx: unknown, id: string) {
      const claims = options.accounts[id];
      if (claims === undefined) return undefined;
      return { accountId: id, claims: () => ({ ...claims, sub: claims.sub ?? id }) };
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      phone: ['phone_number', 'phone_number_verified'],
      profile: ['name', 'preferred_username'],
    },
    scopes: ['openid', 'offline_access', 'email', 'phone', 'profile'],
    features: {
      devInteractions: { enabled: true },
      backchannelLogout: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    jwks: { keys: [...(options.signingKeys ?? [await generateSigningKey('dev-1')])] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    // oidc-provider refuses to call loopback addresses (SSRF guard); here latchkey *is* on loopback.
    fetch: (url: string, init: RequestInit & { dispatcher?: unknown }) => {
      const { dispatcher: _ssrfGuard, ...rest } = init;
      return outbound(url, rest);
    },
  });
  server.on('request', provider.callback());
  return {
    issuer,
    provider,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
