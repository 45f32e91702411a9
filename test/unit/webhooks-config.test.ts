/** The `webhooks` config (src/config/webhooks.ts): what is allowed, and that a secret never shows in an error. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../../src/config/config.ts';

const SECRET = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;
const hook = (fields: Record<string, unknown>) => ({ webhooks: [{ url: 'https://hooks.example.com/x', secret: SECRET, events: ['*'], ...fields }] });

function refused(raw: Record<string, unknown>, key: string): string {
  let message = '';
  assert.throws(() => parseConfig(raw), (error: unknown) => {
    assert.ok(error instanceof ConfigError, String(error));
    message = error.message;
    return message.startsWith(`config ${key}:`);
  });
  return message;
}

describe('webhooks config', () => {
  it('defaults to none, and parses a target with its defaults', () => {
    assert.deepEqual(parseConfig({}).webhooks, []);
    const [target] = parseConfig(hook({ events: ['session.ended', 'user.banned'] })).webhooks;
    assert.equal(target?.url, 'https://hooks.example.com/x');
    assert.deepEqual([...(target?.events ?? [])], ['session.ended', 'user.banned']);
    assert.equal(target?.maxAgeSeconds, 86_400);
    assert.match(target?.key ?? '', /^[0-9a-f]{16}$/);
    assert.equal(parseConfig(hook({})).webhooks[0]?.events, null);
  });

  it('takes https anywhere and http only on a loopback host', () => {
    assert.equal(parseConfig(hook({ url: 'http://127.0.0.1:9000/h' })).webhooks.length, 1);
    assert.equal(parseConfig(hook({ url: 'http://[::1]:9000/h' })).webhooks.length, 1);
    refused(hook({ url: 'http://hooks.example.com/x' }), 'webhooks[0].url');
    refused(hook({ url: 'ftp://hooks.example.com/x' }), 'webhooks[0].url');
    const message = refused(hook({ url: 'https://user:hunter2@hooks.example.com/x' }), 'webhooks[0].url');
    assert.doesNotMatch(message, /hunter2/);
  });

  it('refuses a malformed or short secret without showing it', () => {
    for (const secret of ['plain-text-secret-value', `whsec_${Buffer.alloc(8, 1).toString('base64')}`, `whsec_not base64!`]) {
      const message = refused(hook({ secret }), 'webhooks[0].secret');
      assert.ok(!message.includes(secret) && !message.includes(secret.slice(6)), message);
    }
  });

  it('refuses unknown event types, a "*" mixed with types, an empty list, and duplicate URLs', () => {
    refused(hook({ events: ['session.deleted'] }), 'webhooks[0].events');
    refused(hook({ events: ['*', 'user.created'] }), 'webhooks[0].events');
    refused(hook({ events: [] }), 'webhooks[0].events');
    refused(hook({ max_age_seconds: 0 }), 'webhooks[0].max_age_seconds');
    const one = hook({}).webhooks[0];
    refused({ webhooks: [one, one] }, 'webhooks');
  });
});
