/**
 * `session_limits` in the config (src/config/session-limits.ts): each bad value stops start-up with one
 * line naming the key; a good list reaches the typed config.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../../src/config/config.ts';

function refused(limits: unknown, key: string, expected: RegExp): void {
  assert.throws(() => parseConfig({ session_limits: limits }), (error: unknown) => {
    assert.ok(error instanceof ConfigError, String(error));
    assert.ok(error.message.startsWith(`config ${key}:`), error.message);
    assert.match(error.message, expected);
    return true;
  });
}

describe('config: session_limits', () => {
  it('is empty by default', () => {
    assert.deepEqual(parseConfig({}).sessionLimits, []);
  });

  it('parses flags, max and on_exceed', () => {
    const config = parseConfig({
      session_limits: [{ flags: [0, 1], max: 1, on_exceed: 'evict_oldest' }, { flags: [2], max: '1000', on_exceed: 'reject_new' }],
    });
    assert.deepEqual(config.sessionLimits, [{ flags: [0, 1], max: 1, onExceed: 'evict_oldest' }, { flags: [2], max: 1000, onExceed: 'reject_new' }]);
  });

  const ok = { flags: [1], max: 2, on_exceed: 'reject_new' };
  const cases: readonly [string, unknown, string, RegExp][] = [
    ['empty flags', [{ ...ok, flags: [] }], 'session_limits[0].flags', /non-empty list of distinct device flags/],
    ['an unknown flag', [{ ...ok, flags: [1, 3] }], 'session_limits[0].flags', /device flags 0 \(APP\), 1 \(Web\), 2 \(PC\)/],
    ['a repeated flag', [{ ...ok, flags: [1, 1] }], 'session_limits[0].flags', /distinct/],
    ['flags missing', [{ max: 2, on_exceed: 'reject_new' }], 'session_limits[0].flags', /non-empty list/],
    ['max 0', [{ ...ok, max: 0 }], 'session_limits[0].max', /integer from 1 to 1000/],
    ['max 1001', [{ ...ok, max: 1001 }], 'session_limits[0].max', /integer from 1 to 1000/],
    ['max 1.5', [{ ...ok, max: 1.5 }], 'session_limits[0].max', /integer from 1 to 1000/],
    ['an unknown on_exceed', [{ ...ok, on_exceed: 'evict_newest' }], 'session_limits[0].on_exceed', /one of evict_oldest, reject_new/],
    ['on_exceed missing', [{ flags: [1], max: 2 }], 'session_limits[0].on_exceed', /one of evict_oldest, reject_new/],
    ['two limits on the same flags', [{ ...ok, flags: [0, 1] }, { ...ok, flags: [1, 0], on_exceed: 'evict_oldest' }], 'session_limits[1].flags', /session_limits\[0\] has them/],
    ['not a list', { flags: [1], max: 2, on_exceed: 'reject_new' }, 'session_limits', /a list|an object/],
  ];
  for (const [what, limits, key, expected] of cases) {
    it(`refuses ${what}, naming ${key}`, () => refused(limits, key, expected));
  }

  it('refuses an unknown key inside a limit, naming the nearest', () => {
    assert.throws(() => parseConfig({ session_limits: [{ ...ok, on_exceeds: 'reject_new' }] }), /session_limits\[0\]\.on_exceeds: unknown key; did you mean session_limits\[0\]\.on_exceed\?/);
  });
});
