/**
 * docs/security.md hole 10 as it touches the `im` section: a config error must never print a secret. An
 * `im.wukongim.api_url` refused because it carries credentials was echoed in full, password
 * included, into the start-up error that ends up in logs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../../src/config/config.ts';

function refusal(apiUrl: unknown): string {
  try {
    parseConfig({ im: { type: 'wukongim', wukongim: { api_url: apiUrl } } });
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.message;
  }
  return assert.fail('accepted');
}

describe('im config errors never print the credentials of api_url', () => {
  for (const apiUrl of ['http://im:s3cretpw@10.0.0.5:5001/', 'https://s3cretpw@im.example/api', 'ftp://im:s3cretpw@x/', 'http://im:s3cretpw@[bad']) {
    it(`refuses ${apiUrl.replace('s3cretpw', '<password>')} without echoing the password`, () => {
      const message = refusal(apiUrl);
      assert.match(message, /^config im\.wukongim\.api_url: /);
      assert.doesNotMatch(message, /s3cretpw/);
    });
  }

  it('still names the offending value when it holds no credentials', () => {
    assert.match(refusal('ftp://im.example/'), /ftp:\/\/im\.example\//);
  });
});
