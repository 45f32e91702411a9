import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../../src/config/config.ts';

describe('one-time code configuration', () => {
  it('defaults: console sender, email registration on, SMS registration off, send limits', () => {
    const config = parseConfig({});
    assert.deepEqual(config.sender, { type: 'console' });
    assert.deepEqual(config.codeLogin, { registerByEmail: true, registerBySms: false, sendAnswerMs: 1000 });
    assert.deepEqual(config.rateLimits.codeSendIp, { max: 20, windowSeconds: 3600 });
    assert.deepEqual(config.rateLimits.codeSendTo, { max: 5, windowSeconds: 3600 });
    assert.deepEqual(config.rateLimits.codeSendToAll, { max: 10, windowSeconds: 3600 });
  });

  it('smtp: port 465 means implicit TLS unless told otherwise; host and from are required', () => {
    const config = parseConfig({ sender: { type: 'smtp', smtp: { host: 'mail.example.test', port: 465, from: 'a@example.test' } } });
    assert.deepEqual(config.sender, {
      type: 'smtp', smtp: { host: 'mail.example.test', port: 465, secure: true, user: undefined, pass: undefined, from: 'a@example.test' },
    });
    assert.throws(() => parseConfig({ sender: { type: 'smtp', smtp: { from: 'a@example.test' } } }), /sender\.smtp\.host/);
    assert.throws(() => parseConfig({ sender: { type: 'smtp', smtp: { host: 'h' } } }), /sender\.smtp\.from/);
  });

  it('smtp: a user without a password is refused, and the message does not echo secrets', () => {
    const error = (() => {
      try {
        parseConfig({ sender: { type: 'smtp', smtp: { host: 'h', from: 'f@x.test', pass: 'hunter2' } } });
      } catch (caught) {
        return caught;
      }
      return null;
    })();
    assert.ok(error instanceof ConfigError);
    assert.ok(!error.message.includes('hunter2'));
  });

  it('webhook: http(s) URL, bounded timeout, channels', () => {
    const config = parseConfig({ sender: { type: 'webhook', webhook: { url: 'https://sms.example.test/send', channels: ['sms'] } } });
    assert.deepEqual(config.sender, { type: 'webhook', webhook: { url: 'https://sms.example.test/send', timeoutMs: 5000, channels: ['sms'] } });
    assert.throws(() => parseConfig({ sender: { type: 'webhook', webhook: { url: 'ftp://x' } } }), /sender\.webhook\.url/);
    assert.throws(() => parseConfig({ sender: { type: 'webhook', webhook: { url: 'http://x', timeout_ms: 0 } } }), /timeout_ms/);
    assert.throws(() => parseConfig({ sender: { type: 'webhook', webhook: { url: 'http://x', channels: ['fax'] } } }), /channels/);
  });

  it('refuses unknown sender types and non-boolean switches', () => {
    assert.throws(() => parseConfig({ sender: { type: 'pigeon' } }), /sender\.type/);
    assert.throws(() => parseConfig({ code_login: { register_by_sms: 'yes' } }), /code_login\.register_by_sms/);
  });
});
