/**
 * Kills the mutants of src/flows/oidc/return-to.ts that the suite let live (test/mutation/report.md):
 * each assertion names the check it pins. An open redirect there hands the SSO handoff code away.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { callbackLocation, isSafeTarget, validateReturnTo } from '../../src/flows/oidc/return-to.ts';

const refusedWithMessage = (error: unknown): boolean => {
  const e = error as { code?: string; message?: string };
  return e.code === 'invalid_request' && /relative path or an https URL on a listed host/.test(e.message ?? '');
};

describe('return_to: the checks the mutation run showed unpinned', () => {
  it('an empty return_to means "/"', () => {
    assert.equal(validateReturnTo('', []), '/');
  });

  it('is refused past 2048 characters, and accepted at exactly 2048', () => {
    assert.throws(() => validateReturnTo(`/${'a'.repeat(2048)}`, []), refusedWithMessage);
    const longest = `/${'a'.repeat(2047)}`;
    assert.equal(validateReturnTo(longest, []), longest);
  });

  it('isSafeTarget refuses a value the parser would rewrite, and one with a backslash', () => {
    assert.equal(isSafeTarget('/a/../b', []), false);
    assert.equal(isSafeTarget('/a\\b', []), false);
  });

  it('a path ending in "//" stays on latchkey (only a leading "//" leaves it)', () => {
    assert.equal(isSafeTarget('/x//', []), true);
  });

  it('credentials in a listed URL are refused, a password alone too', () => {
    assert.equal(isSafeTarget('https://user@app.test/', ['app.test']), false);
    assert.equal(isSafeTarget('https://:secret@app.test/', ['app.test']), false);
  });

  it('a listed host:port matches the URL host with its port', () => {
    assert.equal(isSafeTarget('https://app.test:8443/x', ['app.test:8443']), true);
    assert.equal(isSafeTarget('https://app.test:8443/x', ['other.test:8443']), false);
  });

  it('the callback checks the stored value before adding its parameter', () => {
    assert.throws(() => callbackLocation('//evil.example/x', [], 'lk_code', 'X'), refusedWithMessage);
    assert.equal(callbackLocation('/x', [], 'lk_code', 'X'), '/x?lk_code=X');
  });
});
