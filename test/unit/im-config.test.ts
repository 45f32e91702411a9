import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/config.ts';

function refused(raw: Record<string, unknown>, key: RegExp): void {
  assert.throws(() => parseConfig(raw), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, key);
    return true;
  });
}

describe('config: im, service_keys, audit', () => {
  it('defaults: no IM server, no service key, 90 days of audit', () => {
    const config = parseConfig({});
    assert.deepEqual(config.im, { type: 'none', quitRetry: { intervalMs: 5000, maxIntervalMs: 300_000, maxAttempts: 12 } });
    assert.deepEqual(config.serviceKeys, []);
    assert.deepEqual(config.audit, { retentionDays: 90 });
  });

  it('im.wukongim: the API URL, the manager token, a 3 s timeout by default', () => {
    const config = parseConfig({ im: { type: 'wukongim', wukongim: { api_url: 'http://10.0.0.5:5001', manager_token: 'm' } } });
    assert.deepEqual(config.im, {
      type: 'wukongim',
      wukongim: { apiUrl: 'http://10.0.0.5:5001', managerToken: 'm', timeoutMs: 3000 },
      quitRetry: { intervalMs: 5000, maxIntervalMs: 300_000, maxAttempts: 12 },
    });
  });

  it('refuses a bad IM config with one line naming the key, never echoing the manager token', () => {
    refused({ im: { type: 'openim' } }, /^config im\.type: /);
    refused({ im: { type: 'wukongim' } }, /^config im\.wukongim\.api_url: /);
    refused({ im: { type: 'wukongim', wukongim: { api_url: 'ftp://x' } } }, /api_url/);
    refused({ im: { type: 'wukongim', wukongim: { api_url: 'http://u:p@x' } } }, /without credentials/);
    refused({ im: { type: 'wukongim', wukongim: { api_url: 'http://x', api_uri: 'typo' } } }, /^config im\.wukongim\.api_uri: /);
    refused({ im: { quit_retry: { max_attempts: 0 } } }, /im\.quit_retry\.max_attempts/);
    refused({ im: { quit_retry: { interval_ms: 10_000, max_interval_ms: 5000 } } }, /im\.quit_retry\.max_interval_ms/);
    assert.throws(() => parseConfig({ im: { type: 'wukongim', wukongim: { api_url: 'http://x', manager_token: 7 } } }), (error: Error) => {
      assert.match(error.message, /manager_token: "\*\*\*"/);
      return true;
    });
  });

  it('service_keys from the file or LATCHKEY_SERVICE_KEYS (comma-separated); short keys refused, never echoed', () => {
    const key = 'k'.repeat(32);
    assert.deepEqual(parseConfig({ service_keys: [key] }).serviceKeys, [key]);
    assert.deepEqual(loadConfig({ env: { LATCHKEY_SERVICE_KEYS: `${key}, ${'j'.repeat(40)}` } }).serviceKeys, [key, 'j'.repeat(40)]);
    assert.throws(() => parseConfig({ service_keys: ['short-secret'] }), (error: Error) => {
      assert.match(error.message, /^config service_keys: "\*\*\*"/);
      assert.doesNotMatch(error.message, /short-secret/);
      return true;
    });
  });

  it('audit.retention_days is a whole number of days', () => {
    assert.equal(parseConfig({ audit: { retention_days: 30 } }).audit.retentionDays, 30);
    refused({ audit: { retention_days: 0 } }, /audit\.retention_days/);
    refused({ audit: { retention: 30 } }, /audit\.retention/);
  });
});
