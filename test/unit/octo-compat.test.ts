/**
 * compat.octo's small pieces (docs/octo-compat.md): the config section, octo-server's token value
 * (a name cannot forge a role), and the device number.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/config.ts';
import { octoTokenValue } from '../../src/core/sessions/octo-mirror.ts';
import { octoDeviceNumber } from '../../src/http/routes/octo.ts';

describe('compat config', () => {
  it('is off by default, with no mirror', () => {
    assert.deepEqual(parseConfig({}).compat, { octo: false, octoRedis: null, octoQr: false });
  });

  it('gives the mirror octo-server\'s defaults', () => {
    const { compat } = parseConfig({ compat: { octo: true, octo_redis: { url: 'redis://octo:6379/2' } } });
    assert.deepEqual(compat.octoRedis, {
      url: 'redis://octo:6379/2', tokenPrefix: 'token:', sidPrefix: 'latchkey:octo-sid:', tokenTtlSeconds: 2_592_000,
      retryIntervalMs: 5000, retryMaxIntervalMs: 300_000,
    });
  });

  it('refuses a mirror without compat.octo, a URL that is not redis, and never echoes the URL\'s password', () => {
    assert.throws(() => parseConfig({ compat: { octo_redis: { url: 'redis://octo' } } }), /compat\.octo_redis: .*compat\.octo: true/);
    assert.throws(() => parseConfig({ compat: { octo: true, octo_redis: { url: 'http://octo' } } }), /compat\.octo_redis\.url/);
    assert.throws(
      () => parseConfig({ compat: { octo: true, octo_redis: { url: 'mysql://u:hunter2@octo' } } }),
      (error: Error) => !error.message.includes('hunter2') && /compat\.octo_redis\.url/.test(error.message),
    );
    assert.throws(() => parseConfig({ compat: { octo: 'yes' } }), /compat\.octo/);
  });

  it('takes the legacy QR only with compat.octo', () => {
    assert.equal(parseConfig({ compat: { octo: true, octo_qr: true } }).compat.octoQr, true);
    assert.equal(parseConfig({ compat: { octo: true } }).compat.octoQr, false);
    assert.throws(() => parseConfig({ compat: { octo_qr: true } }), /compat\.octo_qr: .*compat\.octo: true/);
    assert.throws(() => parseConfig({ compat: { octo: true, octo_qr: 'maybe' } }), /compat\.octo_qr/);
  });
});

describe('octo-server\'s token value', () => {
  it('is uid@name@role, with the role only for admins', () => {
    assert.equal(octoTokenValue({ uid: 'u1', name: 'Alice', role: 'user' }), 'u1@Alice@');
    assert.equal(octoTokenValue({ uid: 'u1', name: 'Alice', role: 'admin' }), 'u1@Alice@admin');
  });

  it('cannot be forged by a name or uid holding @ or control characters (octo-server splits on every @)', () => {
    for (const name of ['eve@admin', 'eve@superAdmin@x', '@admin', 'a\u0000@admin', 'tab\there\nnew']) {
      const parts = octoTokenValue({ uid: 'u1', name, role: 'user' }).split('@');
      assert.equal(parts.length, 3, name);
      assert.deepEqual([parts[0], parts[2]], ['u1', ''], name);
      assert.doesNotMatch(parts[1] ?? '', /\p{Cc}/u, name);
    }
    assert.equal(octoTokenValue({ uid: 'u@admin', name: 'x', role: 'user' }).split('@').length, 3);
  });
});

describe('the octo device number', () => {
  it('is a positive 31-bit integer, stable per (uid, device), different across users', () => {
    const a = octoDeviceNumber('u1', 'phone');
    assert.ok(Number.isInteger(a) && a > 0 && a <= 0x7fffffff);
    assert.equal(octoDeviceNumber('u1', 'phone'), a);
    assert.notEqual(octoDeviceNumber('u2', 'phone'), a);
    assert.notEqual(octoDeviceNumber('u1', 'tablet'), a);
  });
});
