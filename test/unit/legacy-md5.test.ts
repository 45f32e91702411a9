import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { createPasswordHasher } from '../../src/runtime/password-hasher.ts';

/** octo-server's legacy format (docs/octo-server.md §4): hex(MD5(hex(MD5(password)))). */
function octoLegacyHash(password: string): string {
  const md5Hex = (input: string) => createHash('md5').update(input, 'utf8').digest('hex');
  return md5Hex(md5Hex(password));
}

describe('octo-server legacy MD5 hashes, wrapped in argon2id at import', () => {
  const hasher = createPasswordHasher({ memoryCost: 1024, timeCost: 1 });

  it('the wrapped hash verifies the original password and asks for a rehash', async () => {
    const wrapped = await hasher.wrapLegacyMd5(octoLegacyHash('old octo password'));
    assert.match(wrapped, /^octo-md5md5:\$argon2id\$/);
    assert.deepEqual(await hasher.verify(wrapped, 'old octo password'), { ok: true, needsRehash: true });
    assert.deepEqual(await hasher.verify(wrapped, 'old octo passwore'), { ok: false, needsRehash: false });
  });

  it('does not store the MD5 itself, and the MD5 is not a password', async () => {
    const legacy = octoLegacyHash('old octo password');
    const wrapped = await hasher.wrapLegacyMd5(legacy);
    assert.ok(!wrapped.includes(legacy));
    // Someone holding the old MySQL dump cannot log in with the column value.
    assert.equal((await hasher.verify(wrapped, legacy)).ok, false);
    // An unwrapped MD5 in the column (not imported through `latchkey import`) never verifies.
    assert.equal((await hasher.verify(legacy, 'old octo password')).ok, false);
  });

  it('accepts upper-case hex from the column, and refuses anything that is not 32 hex digits', async () => {
    const wrapped = await hasher.wrapLegacyMd5(octoLegacyHash('Ünïcode pässword').toUpperCase());
    assert.equal((await hasher.verify(wrapped, 'Ünïcode pässword')).ok, true);
    for (const bad of ['', 'abc', `${'a'.repeat(31)}g`, '$2a$10$abcdefghijklmnopqrstuv']) {
      await assert.rejects(hasher.wrapLegacyMd5(bad), /not a legacy MD5/, bad);
    }
  });

  it('a corrupt wrapped hash never verifies', async () => {
    for (const stored of ['octo-md5md5:', 'octo-md5md5:$argon2id$garbage', 'octo-md5md5:$2a$10$x']) {
      assert.deepEqual(await hasher.verify(stored, 'anything at all'), { ok: false, needsRehash: false }, stored);
    }
  });
});
