import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseAlertsConfig } from '../../src/config/alerts.ts';
import { ConfigError } from '../../src/config/errors.ts';

describe('config: alerts', () => {
  it('new-device alerts are off unless alerts.new_device is true', () => {
    assert.deepEqual(parseAlertsConfig(undefined), { newDevice: false });
    assert.deepEqual(parseAlertsConfig({}), { newDevice: false });
    assert.deepEqual(parseAlertsConfig({ new_device: true }), { newDevice: true });
  });

  it('refuses anything but a boolean, and a section that is not an object', () => {
    assert.throws(() => parseAlertsConfig({ new_device: 'yes' }), ConfigError);
    assert.throws(() => parseAlertsConfig([]), ConfigError);
  });
});
