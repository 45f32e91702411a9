/**
 * Kills the mutants of src/core/sessions/token.ts (test/mutation/README.md): the token's shape
 * is the first gate of every authenticated request, and the sid must be SHA-256 of the token.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { newSessionToken, sidOf, sidOfPresentedToken } from '../../src/core/sessions/token.ts';

const fixedRandom = { bytes: (n: number) => Buffer.alloc(n, 7), int: () => 0 };

describe('session token', () => {
  it('is 32 random bytes, base64url, and its sid is their SHA-256', () => {
    const { token, sid } = newSessionToken(fixedRandom);
    assert.equal(token, Buffer.alloc(32, 7).toString('base64url'));
    assert.equal(token.length, 43);
    assert.equal(sid, createHash('sha256').update(token).digest('base64url'));
    assert.equal(sidOf(token), sid);
  });

  it('accepts exactly 43 base64url characters, anchored at both ends', () => {
    const good = 'A'.repeat(21) + '-_' + 'z9'.repeat(10);
    assert.equal(good.length, 43);
    assert.equal(sidOfPresentedToken(good), sidOf(good));
    for (const bad of ['', good.slice(1), good + 'A', `x${good}`, `${good.slice(1)}=`, `${good.slice(1)}+`, `${good.slice(1)}/`, ` ${good.slice(1)}`, `${good.slice(0, 42)}\n`]) {
      assert.equal(sidOfPresentedToken(bad), null, JSON.stringify(bad));
    }
  });
});
