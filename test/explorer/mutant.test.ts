/**
 * The mutants the broken-variant tests load must be the production code with exactly the bug
 * named, or those tests prove nothing: a replacement that no longer matches fails loudly.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadMutant, mutantSource, srcFile } from './mutant.ts';

const accounts = srcFile('core/accounts.ts');

describe('mutants of production modules', () => {
  it('refuses a replacement that does not match exactly once', () => {
    assert.throws(() => mutantSource(accounts, [['no such text in the file', '']]), /expected one match .* found 0/);
    assert.throws(() => mutantSource(accounts, [['deps', '']]), /expected one match .* found \d+/);
  });

  it('points relative imports back into src/ and changes nothing else', async () => {
    const source = mutantSource(accounts, []);
    assert.doesNotMatch(source, /from '\.\.?\//);
    assert.match(source, new RegExp(`from '${new URL('../../src/core/errors.ts', import.meta.url).href}'`));
    const mutant = await loadMutant<typeof import('../../src/core/accounts.ts')>(accounts, []);
    assert.equal(typeof mutant.setAccountStatus, 'function');
  });
});
