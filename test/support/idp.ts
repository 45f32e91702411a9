/**
 * A real OpenID provider for SSO tests (the `latchkey dev-idp` one, oidc-provider 9) next to a
 * latchkey test server, and a small cookie-keeping "browser" that walks the provider's login and
 * consent forms with plain fetch.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { SignJWT, importJWK, type JWK } from 'jose';
import { generateSigningKey, startDevIdp, type DevIdp, type DevIdpOptions } from '../../src/dev-idp.ts';
import { freePort } from './processes.ts';
import { readLink } from '../../src/flows/oidc/session-links.ts';
import { refreshTokenAad } from '../../src/flows/oidc/token-cipher.ts';
import { startTestServer, testDefaults, type TestServer } from './server.ts';

export const PROVIDER = 'corp';
export const CLIENT_ID = 'latchkey-test';
export const CLIENT_SECRET = 'test-client-secret';

export const TEST_ACCOUNTS: DevIdpOptions['accounts'] = {
  ada: { name: 'Ada Lovelace', email: 'ada@corp.test', email_verified: true, preferred_username: 'ada' },
  grace: { name: 'Grace Hopper', email: 'grace@corp.test', email_verified: true },
  mallory: { name: 'Mallory', email: 'victim@corp.test', email_verified: false },
  linus: { name: 'Linus', email: 'linus@corp.test', email_verified: true },
};

export interface OutboundRequest {
  readonly url: string;
  readonly body: string;
}

export interface SsoWorld {
  readonly idp: DevIdp;
  readonly server: TestServer;
  readonly signingKey: JWK;
  /** Requests the IdP made (back-channel logout tokens). */
  readonly outbound: OutboundRequest[];
  stop(): Promise<void>;
}

export interface WorldOptions {
  readonly provider?: Record<string, unknown>;
  readonly server?: Record<string, unknown>;
  /** Another latchkey node on the same stores, for two-node tests. */
  readonly store?: string;
  readonly db?: string;
  /** Merged into the server's `oidc` section (e.g. a lower `rate_limit`). */
  readonly oidc?: Record<string, unknown>;
}

export const tokenKey = { id: 'k1', key: randomBytes(32).toString('base64') };

export function providerConfig(issuer: string, latchkeyUrl: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: PROVIDER,
    name: 'Corp SSO',
    issuer,
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uri: `${latchkeyUrl}/v1/auth/oidc/${PROVIDER}/callback`,
    post_logout_redirect_uri: `${latchkeyUrl}/signed-out`,
    scopes: ['openid', 'profile', 'email', 'offline_access'],
    allow_insecure_http: true,
    link_by_verified_email: true,
    return_to_hosts: ['app.test'],
    ...extra,
  };
}

/** An IdP and a latchkey node that trust each other. */
export async function startSsoWorld(options: WorldOptions = {}): Promise<SsoWorld> {
  const port = await freePort();
  const latchkeyUrl = `http://127.0.0.1:${port}`;
  const outbound: OutboundRequest[] = [];
  const signingKey = await generateSigningKey('test-1');
  const idp = await startDevIdp({
    clients: [{
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      redirectUris: [`${latchkeyUrl}/v1/auth/oidc/${PROVIDER}/callback`],
      postLogoutRedirectUris: [`${latchkeyUrl}/signed-out`],
      backchannelLogoutUri: `${latchkeyUrl}/v1/auth/oidc/${PROVIDER}/backchannel_logout`,
    }],
    accounts: TEST_ACCOUNTS,
    signingKeys: [signingKey],
    outboundFetch: async (url, init) => {
      outbound.push({ url, body: String(init.body ?? '') });
      return fetch(url, init);
    },
  });
  const server = await startTestServer({
    port,
    rate_limits: { ...testDefaults.rate_limits },
    oidc: { providers: [providerConfig(idp.issuer, latchkeyUrl, options.provider)], token_key: tokenKey, sync_interval: 0, rate_limit: { max: 100_000 }, ...options.oidc },
    ...(options.store === undefined ? {} : { store: options.store }),
    ...(options.db === undefined ? {} : { db: options.db }),
    ...options.server,
  });
  return {
    idp, server, signingKey, outbound,
    async stop() {
      await server.stop();
      await idp.close();
    },
  };
}

/** A browser: one cookie jar (cookies are not port-specific, so IdP and latchkey share it, as in a browser). */
export class Browser {
  readonly #cookies = new Map<string, string>();

  async request(url: string, init: { method?: string; form?: Record<string, string>; json?: unknown } = {}): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.#cookies.size > 0) headers.cookie = [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    let body: string | undefined;
    if (init.form !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    } else if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    }
    const response = await fetch(url, { method: init.method ?? (body === undefined ? 'GET' : 'POST'), headers, body, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) this.#store(line);
    return response;
  }

  cookie(name: string): string | undefined {
    return this.#cookies.get(name);
  }

  /** Plants a cookie as another site could (cookie tossing from a sibling subdomain). */
  plantCookie(name: string, value: string): void {
    this.#cookies.set(name, value);
  }

  #store(line: string): void {
    const [pair = '', ...attributes] = line.split(';');
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const expired = attributes.some((a) => {
      const [key = '', v = ''] = a.split('=').map((s) => s.trim());
      return (key.toLowerCase() === 'max-age' && Number(v) <= 0) || (key.toLowerCase() === 'expires' && Date.parse(v) <= Date.now());
    });
    if (expired || value === '') this.#cookies.delete(name);
    else this.#cookies.set(name, value);
  }
}

export interface AuthorizeQuery {
  readonly return_to?: string;
  readonly flag?: string;
  readonly app_challenge?: string;
}

/** GET authorize; returns latchkey's answer (302 to the IdP, or an error). */
export function authorize(browser: Browser, server: TestServer, query: AuthorizeQuery = {}): Promise<Response> {
  const search = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined) as [string, string][]);
  return browser.request(`${server.url}/v1/auth/oidc/${PROVIDER}/authorize?${search}`);
}

/**
 * Follows the IdP from an authorization URL through its login and consent forms until it redirects
 * to latchkey's callback, and returns that callback URL (not yet visited).
 */
export async function passIdp(browser: Browser, authorizationUrl: string, login: string): Promise<string> {
  let url = authorizationUrl;
  let response = await browser.request(url);
  for (let step = 0; step < 12; step += 1) {
    if (response.status >= 300 && response.status < 400) {
      const next = new URL(response.headers.get('location') ?? '', url).href;
      if (next.includes(`/v1/auth/oidc/${PROVIDER}/callback`)) return next;
      url = next;
      response = await browser.request(url);
      continue;
    }
    const html = await response.text();
    assert.equal(response.status, 200, `IdP answered ${response.status} at ${url}: ${html.slice(0, 500)}`);
    const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/.exec(html);
    assert.ok(form?.[1] !== undefined && form[2] !== undefined, `no form at ${url}: ${html.slice(0, 500)}`);
    const fields: Record<string, string> = {};
    for (const [tag] of form[2].matchAll(/<input[^>]*>/g)) {
      const name = /\bname="([^"]+)"/.exec(tag)?.[1];
      if (name !== undefined) fields[name] = /\bvalue="([^"]*)"/.exec(tag)?.[1] ?? '';
    }
    if (fields.prompt === 'login') Object.assign(fields, { login, password: 'any password' });
    url = new URL(form[1].replaceAll('&amp;', '&'), url).href;
    response = await browser.request(url, { form: fields });
  }
  assert.fail('the IdP did not send the browser back');
}

export interface CallbackResult {
  readonly status: number;
  readonly location: string;
  readonly lkCode: string | null;
  readonly oidcError: string | null;
}

export async function visitCallback(browser: Browser, callbackUrl: string): Promise<CallbackResult> {
  const response = await browser.request(callbackUrl);
  const location = response.headers.get('location') ?? '';
  await response.body?.cancel();
  const params = new URL(location, 'http://x.invalid').searchParams;
  return { status: response.status, location, lkCode: params.get('lk_code'), oidcError: params.get('oidc_error') };
}

/** authorize → IdP forms → callback. */
export async function ssoToCallback(browser: Browser, server: TestServer, login: string, query: AuthorizeQuery = {}): Promise<string> {
  const started = await authorize(browser, server, query);
  assert.equal(started.status, 302, await started.text());
  return passIdp(browser, started.headers.get('location') ?? '', login);
}

export async function exchange(
  browser: Browser, server: TestServer, lkCode: string, appVerifier?: string,
): Promise<{ status: number; body: any }> {
  const response = await browser.request(`${server.url}/v1/auth/oidc/${PROVIDER}/exchange`, {
    json: appVerifier === undefined ? { lk_code: lkCode } : { lk_code: lkCode, app_verifier: appVerifier },
  });
  return { status: response.status, body: await response.json() };
}

/** The whole login: returns the login response. */
export async function ssoLogin(browser: Browser, server: TestServer, login: string, query: AuthorizeQuery = {}): Promise<any> {
  const callback = await visitCallback(browser, await ssoToCallback(browser, server, login, query));
  assert.ok(callback.lkCode !== null, `callback failed: ${callback.location}`);
  const answer = await exchange(browser, server, callback.lkCode);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body;
}

/** A back-channel logout_token as the IdP would sign it (the world holds the IdP's signing key), or signed with `key`. */
export async function logoutToken(world: SsoWorld, claims: Record<string, unknown>, key: JWK = world.signingKey): Promise<string> {
  return new SignJWT({ events: { 'http://schemas.openid.net/event/backchannel-logout': {} }, jti: randomUUID(), ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: key.kid ?? '', typ: 'logout+jwt' })
    .setIssuer(world.idp.issuer)
    .setAudience(CLIENT_ID)
    .setIssuedAt()
    .sign(await importJWK(key, 'RS256'));
}

/** The refresh token latchkey keeps (sealed) for a session, read the way latchkey reads it. */
export async function storedRefreshToken(world: SsoWorld, sid: string): Promise<string> {
  const { oidc, kv } = world.server.runtime;
  const link = await readLink(kv, sid);
  assert.ok(link?.refreshTokenId, 'the session has a refresh token');
  const stored = await oidc.identities.findRefreshToken(link.refreshTokenId);
  assert.ok(stored !== null);
  const token = oidc.cipher.open(stored.sealed, refreshTokenAad(stored.identityId, stored.id));
  assert.ok(token !== null);
  return token;
}
