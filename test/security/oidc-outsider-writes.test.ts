/**
 * Hole 12: an outsider could write unbounded audit rows. `POST …/backchannel_logout` had no rate
 * limit and wrote one row per invalid logout_token (~1,600 rows/s from one client); the callback
 * (unknown state) and the exchange (unknown code) wrote one row per request too, bounded only per
 * address. Invalid tokens, states and codes are now counted in metrics, and invalid logout tokens
 * are limited per client address by `oidc.rate_limit`; a logout the IdP really signed never is.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { Browser, logoutToken, PROVIDER, ssoToCallback, startSsoWorld, visitCallback, type SsoWorld } from '../support/idp.ts';

const MAX = 10;

describe('outsiders cannot write unbounded rows through the SSO routes', () => {
  let world: SsoWorld;
  let forgedKey: JWK;
  before(async () => {
    world = await startSsoWorld({ oidc: { rate_limit: { max: MAX, window_seconds: 600 } }, server: { trust_proxy: '127.0.0.1' } });
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    forgedKey = { ...(await exportJWK(privateKey)), kid: world.signingKey.kid };
  });
  after(async () => {
    await world.stop();
  });

  const post = (path: string, init: { form?: Record<string, string>; json?: unknown; from?: string }): Promise<Response> => {
    const headers: Record<string, string> = {};
    if (init.from !== undefined) headers['x-forwarded-for'] = init.from;
    if (init.form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    if (init.json !== undefined) headers['content-type'] = 'application/json';
    const body = init.form !== undefined ? new URLSearchParams(init.form).toString() : JSON.stringify(init.json);
    return fetch(`${world.server.url}/v1/auth/oidc/${PROVIDER}/${path}`, { method: 'POST', headers, body });
  };

  const auditRows = async (type: string): Promise<number> => (await world.server.runtime.accounts.queryAudit({ type, limit: 100_000 })).length;
  const metric = async (pattern: RegExp): Promise<number> => {
    const text = await world.server.runtime.metrics.registry.metrics();
    return [...text.matchAll(new RegExp(pattern.source, 'gm'))].reduce((sum, match) => sum + Number(match[1]), 0);
  };

  it('invalid logout tokens from one address: limited per oidc.rate_limit, counted, no audit row', async () => {
    const rowsBefore = await auditRows('oidc_backchannel');
    const invalidBefore = await metric(/^latchkey_oidc_backchannel_invalid_total\{[^}]*\} (\d+)$/);
    assert.equal(await metric(/^latchkey_oidc_backchannel_total\{result="rate_limited"\} (\d+)$/), 0);
    const forged = await logoutToken(world, { sub: 'ada' }, forgedKey);
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => post('backchannel_logout', { form: { logout_token: i % 2 === 0 ? forged : 'not.a.jwt' } })));
    const statuses = answers.map((answer) => answer.status);
    assert.equal(statuses.filter((s) => s === 400).length, MAX, JSON.stringify(statuses));
    assert.equal(statuses.filter((s) => s === 429).length, 200 - MAX);
    assert.ok(answers.filter((a) => a.status === 429).every((a) => Number(a.headers.get('retry-after')) > 0));
    assert.equal(await auditRows('oidc_backchannel'), rowsBefore, 'no audit row per invalid token');
    // Each token is either checked and counted invalid, or refused unchecked once the budget is spent.
    const invalid = await metric(/^latchkey_oidc_backchannel_invalid_total\{[^}]*\} (\d+)$/) - invalidBefore;
    assert.ok(invalid >= MAX, String(invalid));
    assert.equal(invalid + (await metric(/^latchkey_oidc_backchannel_total\{result="rate_limited"\} (\d+)$/)), 200);
  });

  it('logout tokens the IdP signed are never limited, even in a burst from the same address', async () => {
    const tokens = await Promise.all(Array.from({ length: 4 * MAX }, () => logoutToken(world, { sub: `nobody-${randomUUID()}` })));
    const answers = await Promise.all(tokens.map((token) => post('backchannel_logout', { form: { logout_token: token }, from: '198.51.100.7' })));
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
  });

  it('invalid logout tokens, unknown states and unknown codes from many addresses write no row', async () => {
    const addresses = Array.from({ length: 60 }, (_, i) => `203.0.113.${i + 1}`);
    const before = await Promise.all(['oidc_backchannel', 'oidc_callback', 'oidc_exchange'].map(auditRows));
    const backchannel = await Promise.all(addresses.map((from) => post('backchannel_logout', { form: { logout_token: 'a.b.c' }, from })));
    const callbacks = await Promise.all(addresses.map((from) => fetch(
      `${world.server.url}/v1/auth/oidc/${PROVIDER}/callback?state=${randomBytes(32).toString('base64url')}&code=x`,
      { headers: { 'x-forwarded-for': from }, redirect: 'manual' },
    )));
    const exchanges = await Promise.all(addresses.map((from) => post('exchange', { json: { lk_code: randomBytes(32).toString('base64url') }, from })));
    assert.deepEqual([...new Set(backchannel.map((a) => a.status))], [400]);
    assert.deepEqual([...new Set(callbacks.map((a) => a.status))], [400]);
    assert.deepEqual([...new Set(exchanges.map((a) => a.status))], [404]);
    const afterRows = await Promise.all(['oidc_backchannel', 'oidc_callback', 'oidc_exchange'].map(auditRows));
    assert.deepEqual(afterRows, before, 'audit rows: backchannel, callback, exchange');
    assert.ok(await metric(/^latchkey_oidc_callback_total\{result="state_invalid"\} (\d+)$/) >= addresses.length);
    assert.ok(await metric(/^latchkey_oidc_exchange_total\{result="not_found"\} (\d+)$/) >= addresses.length);
  });

  it('callbacks that fail on states an outsider started write at most oidc.rate_limit.max rows per window', async () => {
    const addresses = Array.from({ length: 3 * MAX }, (_, i) => `192.0.2.${i + 1}`);
    const failedRows = async () => (await world.server.runtime.accounts.queryAudit({ type: 'oidc_callback', limit: 100_000 }))
      .filter((event) => event.uid === null && event.result === 'fail').length;
    const before = await failedRows();
    const answers = await Promise.all(addresses.map(async (from) => {
      const started = await fetch(`${world.server.url}/v1/auth/oidc/${PROVIDER}/authorize`, { headers: { 'x-forwarded-for': from }, redirect: 'manual' });
      const state = new URL(started.headers.get('location') ?? '').searchParams.get('state') ?? '';
      const query = new URLSearchParams({ state, error: 'access_denied', iss: world.idp.issuer });
      return fetch(`${world.server.url}/v1/auth/oidc/${PROVIDER}/callback?${query}`, { headers: { 'x-forwarded-for': from }, redirect: 'manual' });
    }));
    assert.ok(answers.every((answer) => answer.status === 302 && (answer.headers.get('location') ?? '').includes('oidc_error=')));
    const written = (await failedRows()) - before;
    assert.ok(written <= MAX, `${written} rows for ${addresses.length} failed callbacks`);
  });

  it('a real code tried without its binding from many addresses is audited once, for its owner', async () => {
    const owner = new Browser();
    const code = (await visitCallback(owner, await ssoToCallback(owner, world.server, 'ada'))).lkCode ?? '';
    const rows = async () => (await world.server.runtime.accounts.queryAudit({ type: 'oidc_exchange', limit: 100_000 })).length;
    const before = await rows();
    const addresses = Array.from({ length: 3 * MAX }, (_, i) => `198.18.0.${i + 1}`);
    const answers = await Promise.all(addresses.map((from) => post('exchange', { json: { lk_code: code }, from })));
    assert.deepEqual([...new Set(answers.map((answer) => answer.status))], [404]);
    assert.equal((await rows()) - before, 1);
  });
});
