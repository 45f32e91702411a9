import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ConfigError, parseConfig } from '../../src/config/config.ts';
import { TokenCipher, refreshTokenAad } from '../../src/flows/oidc/token-cipher.ts';
import { validateReturnTo, withParameter } from '../../src/flows/oidc/return-to.ts';
import { cryptoRandom } from '../../src/ports/random.ts';

const key = (id: string) => ({ id, key: randomBytes(32).toString('base64') });
const provider = (extra: Record<string, unknown> = {}) => ({
  id: 'corp', issuer: 'https://idp.example.test', client_id: 'c', client_secret: 's', redirect_uri: 'https://sso.example.test/v1/auth/oidc/corp/callback', ...extra,
});

describe('oidc config', () => {
  it('has safe defaults', () => {
    const { oidc } = parseConfig({ oidc: { providers: [provider()], token_key: key('k1') } });
    const [p] = oidc.providers;
    assert.deepEqual(p?.scopes, ['openid', 'profile', 'email']);
    assert.equal(p?.linkByVerifiedEmail, false);
    assert.equal(p?.linkByVerifiedPhone, false);
    assert.equal(p?.allowNewUsers, true);
    assert.equal(p?.name, 'corp');
    assert.equal(oidc.syncIntervalSeconds, 900);
    assert.deepEqual(parseConfig({}).oidc.providers, []);
  });

  for (const [label, oidc, keyName] of [
    ['plain http to a remote IdP', { providers: [provider({ issuer: 'http://idp.example.test' })], token_key: key('k') }, 'oidc.providers[0].issuer'],
    ['allow_insecure_http for a remote IdP', { providers: [provider({ issuer: 'http://idp.example.test', allow_insecure_http: true })], token_key: key('k') }, 'oidc.providers[0].allow_insecure_http'],
    ['no token key', { providers: [provider()] }, 'oidc.token_key'],
    ['a short token key', { providers: [provider()], token_key: { id: 'k', key: randomBytes(16).toString('base64') } }, 'oidc.token_key.key'],
    ['scopes without openid', { providers: [provider({ scopes: ['email'] })], token_key: key('k') }, 'oidc.providers[0].scopes'],
    ['duplicate ids', { providers: [provider(), provider()], token_key: key('k') }, 'oidc.providers'],
    ['a typo', { providers: [provider({ redirect_url: 'x' })], token_key: key('k') }, 'oidc.providers[0].redirect_url'],
  ] as const) {
    it(`refuses ${label}`, () => {
      assert.throws(() => parseConfig({ oidc }), (error: unknown) => error instanceof ConfigError && error.message.startsWith(`config ${keyName}:`));
    });
  }

  it('never echoes secrets in its errors', () => {
    const secret = randomBytes(16).toString('base64');
    assert.throws(() => parseConfig({ oidc: { providers: [provider()], token_key: { id: 'k', key: secret } } }), (error: unknown) =>
      error instanceof ConfigError && !error.message.includes(secret));
  });
});

describe('token cipher', () => {
  const k1 = { id: 'k1', key: randomBytes(32) };
  const k2 = { id: 'k2', key: randomBytes(32) };

  it('opens what it sealed, only with the same AAD (a ciphertext moved to another row does not open)', () => {
    const cipher = new TokenCipher([k1], cryptoRandom);
    const sealed = cipher.seal('refresh-token', refreshTokenAad('identity-a', 'rt-1'));
    assert.match(sealed, /^v1\.k1\./);
    assert.ok(!sealed.includes('refresh-token'));
    assert.equal(cipher.open(sealed, refreshTokenAad('identity-a', 'rt-1')), 'refresh-token');
    assert.equal(cipher.open(sealed, refreshTokenAad('identity-b', 'rt-1')), null);
    // One bit of the tag flipped in the bytes: setting a character to 'A' or 'B' left it as it was
    // one run in 64, when it already was that character, and the untouched token opened.
    const parts = sealed.split('.');
    const body = Buffer.from(parts[3] ?? '', 'base64url');
    body.writeUInt8(body.readUInt8(body.length - 1) ^ 1, body.length - 1);
    const flipped = [...parts.slice(0, 3), body.toString('base64url')].join('.');
    assert.notEqual(flipped, sealed);
    assert.equal(cipher.open(flipped, refreshTokenAad('identity-a', 'rt-1')), null);
  });

  it('rotates: new key first encrypts, the old one still decrypts; a removed key cannot', () => {
    const old = new TokenCipher([k1], cryptoRandom).seal('t', 'aad');
    const rotated = new TokenCipher([k2, k1], cryptoRandom);
    assert.equal(rotated.open(old, 'aad'), 't');
    assert.match(rotated.seal('t', 'aad'), /^v1\.k2\./);
    assert.equal(new TokenCipher([k2], cryptoRandom).open(old, 'aad'), null);
  });
});

describe('return_to', () => {
  it('keeps relative paths and listed hosts, and adds the code in the query', () => {
    assert.equal(validateReturnTo(undefined, []), '/');
    assert.equal(validateReturnTo('/a/b?c=1#d', []), '/a/b?c=1#d');
    assert.equal(validateReturnTo('https://App.test/x', ['app.test']), 'https://app.test/x');
    assert.equal(withParameter('/a?c=1#d', 'lk_code', 'X'), '/a?c=1&lk_code=X#d');
    assert.equal(withParameter('https://app.test/x', 'oidc_error', 'login_failed'), 'https://app.test/x?oidc_error=login_failed');
  });

  for (const bad of ['//evil.test', '/\\evil.test', '\\\\evil.test', 'https://evil.test', 'javascript:alert(1)', 'data:text/html,x',
    'https://app.test@evil.test/', 'https://user@app.test/', '/a\tb', ' /x', 'http:evil.test', 'https:/\\evil.test']) {
    it(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(() => validateReturnTo(bad, ['app.test']), (error: unknown) => (error as { code?: string }).code === 'invalid_request');
    });
  }
});
