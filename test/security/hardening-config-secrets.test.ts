/**
 * A config error names the key and what is allowed, and never the value of a secret: the line goes
 * to stderr, to the service manager's journal and to whoever reads the logs.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { describeRun, runLatchkeyCli } from '../support/cli-run.ts';
import { ConfigError, parseConfig } from '../../src/config/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'latchkey-hardening-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** 32 random-looking bytes in base64: the shape of a real key, so a leak is unmistakable. */
const SECRET = 'S3cr3tK3yMat3rialThatMustNeverBeLogged+AB=';

const PROVIDER = {
  id: 'corp', issuer: 'https://idp.example.com', client_id: 'latchkey', client_secret: 'x',
  redirect_uri: 'https://login.example.com/v1/auth/oidc/corp/callback',
};

/** Config files that are wrong in a secret's place, each holding SECRET somewhere. */
const BAD_SECRETS: readonly (readonly [name: string, config: Record<string, unknown>])[] = [
  ['oidc.token_key given as a bare string', { oidc: { providers: [PROVIDER], token_key: SECRET } }],
  ['oidc.token_key as a list of strings', { oidc: { providers: [PROVIDER], token_key: [SECRET] } }],
  ['oidc.token_key with a bad key id', { oidc: { providers: [PROVIDER], token_key: { id: 'bad id', key: SECRET } } }],
  ['a misspelt client_secret', { oidc: { providers: [{ ...PROVIDER, client_secert: SECRET }], token_key: { id: 'k', key: 'x' } } }],
  ['client_secret of the wrong type', { oidc: { providers: [{ ...PROVIDER, client_secret: [SECRET] }] } }],
  ['service_keys too short', { service_keys: [SECRET.slice(0, 20)] }],
  ['a provider that is a string', { oidc: { providers: [SECRET] } }],
  ['sender.smtp.pass without user', { sender: { type: 'smtp', smtp: { host: 'mail', from: 'a@b.c', pass: SECRET } } }],
  ['sender.smtp given as a string', { sender: { type: 'smtp', smtp: SECRET } }],
  ['im.wukongim.manager_token too long', { im: { type: 'wukongim', wukongim: { api_url: 'http://127.0.0.1:5001', manager_token: SECRET.repeat(20) } } }],
  ['an unknown top-level key', { oidc_token_key: SECRET }],
  ['a db URL with a password and a wrong scheme', { db: `mysql://latchkey:${SECRET}@db.example.com/latchkey` }],
  ['a store URL with a password and a wrong scheme', { store: `valkey://:${SECRET}@cache.example.com:6379` }],
];

describe('config errors never print a secret', () => {
  for (const [name, config] of BAD_SECRETS) {
    it(`${name}: the error names the key, not the value`, () => {
      assert.throws(() => parseConfig(config), (error: unknown) => {
        assert.ok(error instanceof ConfigError, String(error));
        assert.ok(!error.message.includes(SECRET.slice(0, 20)), `the message leaks the secret: ${error.message}`);
        assert.ok(!error.message.includes(SECRET.slice(-12)), `the message leaks the secret: ${error.message}`);
        assert.match(error.message, /^config \S+: /);
        return true;
      });
    });
  }

  it('latchkey serve with a bad oidc.token_key stops with one line on stderr that does not hold the key', async () => {
    const file = join(dir, 'bad-token-key.json');
    writeFileSync(file, JSON.stringify({ oidc: { providers: [PROVIDER], token_key: SECRET } }));
    const run = await runLatchkeyCli(['serve', '--config', file]);
    assert.equal(run.code, 1, describeRun(run));
    assert.match(run.stderr, /^latchkey: config oidc\.token_key/);
    assert.ok(!run.stderr.includes(SECRET.slice(0, 20)), describeRun(run));
    assert.ok(!(run.stdout + run.stderr).includes(SECRET.slice(-12)), describeRun(run));
  });

  it('a value that is not secret is still shown, so the operator sees the typo', () => {
    assert.throws(() => parseConfig({ log_level: 'loud' }), /config log_level: "loud" is not allowed/);
  });
});
