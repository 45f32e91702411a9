/**
 * The session core's small pieces, asserted to the byte: the Kv key names and stored formats are
 * shared by every node of a deployment (and by nodes of two releases during a rolling deploy), so a
 * changed key or encoding is a lost session, not a cosmetic difference. Kills the StrykerJS mutants
 * of keys.ts, policy.ts, record.ts and im-token-value.ts (test/mutation/report.md).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  IM_QUIT_QUEUE_KEY, deviceSlotKey, imQuitJobKey, imTokenKey, lastSeenKey, sessionKey, userSessionsKey,
} from '../../src/core/sessions/keys.ts';
import { DEVICE_FLAGS, defaultDevicePolicies, isDeviceFlag } from '../../src/core/sessions/policy.ts';
import { decodeIndex, encodeIndexEntry, parseSessionRecord } from '../../src/core/sessions/record.ts';
import { encodeImTokenValue, newImToken, parseImTokenValue } from '../../src/core/sessions/im-token-value.ts';
import type { Random } from '../../src/ports/random.ts';

/** Hands out the given bytes, in order, whatever length is asked (the rest zero-filled). */
function fixedRandom(...bytes: number[]): Random {
  return {
    bytes: (length) => {
      const out = Buffer.alloc(length);
      Buffer.from(bytes.splice(0, length)).copy(out);
      return out;
    },
    int: (min) => min,
  };
}

const TOKEN = '0123456789abcdef0123456789abcdef';

describe('Kv key names (docs/design.md §3.1)', () => {
  it('are the documented ones, with the uid hash tag on every per-user key', () => {
    assert.equal(sessionKey('S'), 'sess:S');
    assert.equal(lastSeenKey('S'), 'seen:S');
    assert.equal(userSessionsKey('U'), 'user:{U}:sessions');
    assert.equal(deviceSlotKey('U', 0), 'user:{U}:slot:0');
    assert.equal(imTokenKey('U', 1), 'user:{U}:im:1');
    assert.equal(imQuitJobKey('U', 2), 'user:{U}:im-quit:2');
    assert.equal(IM_QUIT_QUEUE_KEY, 'im-quit-queue');
  });
});

describe('device flags and policies', () => {
  it('knows exactly WuKongIM\'s three flags, by number', () => {
    assert.deepEqual([...DEVICE_FLAGS], [0, 1, 2]);
    for (const flag of [0, 1, 2]) assert.equal(isDeviceFlag(flag), true, String(flag));
    for (const other of [-1, 3, '0', '1', '2', null, undefined, 1.5]) assert.equal(isDeviceFlag(other), false, String(other));
  });

  it('defaults to one APP session and up to ten Web and ten PC sessions', () => {
    assert.deepEqual(defaultDevicePolicies, { 0: { mode: 'exclusive' }, 1: { mode: 'multi', cap: 10 }, 2: { mode: 'multi', cap: 10 } });
  });
});

describe('the per-user index', () => {
  it('encodes flag:created_at:expires_at and decodes it back', () => {
    assert.equal(encodeIndexEntry(2, 10, 20), '2:10:20');
    assert.deepEqual(decodeIndex({ a: '0:1:2', b: '1:3:4', c: '2:5:6' }), [
      { sid: 'a', flag: 0, createdAt: 1, expiresAt: 2 },
      { sid: 'b', flag: 1, createdAt: 3, expiresAt: 4 },
      { sid: 'c', flag: 2, createdAt: 5, expiresAt: 6 },
    ]);
  });

  it('drops entries it cannot read: unknown flag, missing times', () => {
    assert.deepEqual(decodeIndex({ a: '3:1:2', b: '-1:1:2', c: 'x:1:2', d: '1', e: '1:5', f: '' }), []);
  });
});

describe('the session record', () => {
  it('reads a record with a string uid, whatever else it lacks', () => {
    assert.deepEqual(parseSessionRecord('S', '{"uid":"U"}'), { uid: 'U', sid: 'S' });
  });

  it('reads no session from records without a string uid', () => {
    for (const raw of ['{}', '{"uid":null}', '{"id":"U"}', 'true', '0']) assert.equal(parseSessionRecord('S', raw), null, raw);
  });
});

describe('the IM token value (im-token-value.ts)', () => {
  it('reads live, owed and none', () => {
    assert.deepEqual(parseImTokenValue(`live:${TOKEN}:abc`), { state: 'live', token: TOKEN });
    assert.deepEqual(parseImTokenValue(`owed:${TOKEN}:A-z_9`), { state: 'owed', token: TOKEN });
    assert.deepEqual(parseImTokenValue(`live:${TOKEN}:${'n'.repeat(16)}`), { state: 'live', token: TOKEN });
    assert.deepEqual(parseImTokenValue('none:abc'), { state: 'none' });
    assert.deepEqual(parseImTokenValue(null), { state: 'none' });
  });

  it('reads anything else, however close, as no token', () => {
    const bad = [
      '', 'garbage', `x${TOKEN}`,
      `dead:${TOKEN}:abc`, `xlive:${TOKEN}:abc`, `live:${TOKEN}:abc:x`, `live:${TOKEN}:abc$`, ` live:${TOKEN}:abc`, `live:${TOKEN}:abc `,
      `live:${TOKEN.slice(1)}:abc`, `live:${TOKEN}0:abc`, `live:${TOKEN.toUpperCase()}:abc`, `live:${TOKEN.slice(1)}g:abc`,
      `live:${TOKEN}:`, `live:${TOKEN}:${'n'.repeat(17)}`, `live:${TOKEN}:a+b`, `live:${TOKEN}:a/b`, `live:${TOKEN}abc`,
      `live::abc`, `live:${TOKEN}`,
    ];
    for (const raw of bad) assert.deepEqual(parseImTokenValue(raw), { state: 'none' }, raw);
    // A `none` value never carries a token, however it is spelled after the prefix.
    for (const raw of ['none:', `none:${'n'.repeat(17)}`, 'none:a+b', 'xnone:abc', 'none:abc ', `none:${TOKEN}:abc`]) {
      assert.deepEqual(parseImTokenValue(raw), { state: 'none' }, raw);
    }
  });

  it('writes each state with a fresh base64url nonce that reads back', () => {
    // 0xfb 0xff … is `-_…` in base64url: any other encoding would not read back.
    const random = fixedRandom(0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf, 1, 2, 3, 4, 5, 6);
    const live = encodeImTokenValue({ state: 'live', token: TOKEN }, random);
    assert.equal(live, `live:${TOKEN}:-_-_-_-_`);
    assert.deepEqual(parseImTokenValue(live), { state: 'live', token: TOKEN });
    const none = encodeImTokenValue({ state: 'none' }, random);
    assert.equal(none, 'none:AQIDBAUG');
    assert.equal(encodeImTokenValue({ state: 'owed', token: TOKEN }, fixedRandom()), `owed:${TOKEN}:AAAAAAAA`);
  });

  it('makes IM tokens of 16 random bytes in hex', () => {
    const bytes = Array.from({ length: 16 }, (_, i) => 0xf0 + i);
    assert.equal(newImToken(fixedRandom(...bytes)), 'f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff');
  });
});
