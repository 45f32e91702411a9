/**
 * Mutant "code-get-then-del" (test/mutation/ci-mutants.ts): a one-time code consumed by GET then DEL instead of
 * compare-and-delete of the value it verified. Two right guesses that both read the record before
 * either consumes it must give ONE 'ok': with GET-then-DEL both delete and both log in.
 *
 * The interleaving is forced: the first two reads of the code's key wait for each other.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { readsMeetingAt } from '../mutation/meeting-kv.ts';
import { CodeStore, codeKey } from '../../src/flows/code/code-store.ts';
import type { Destination } from '../../src/core/destinations.ts';
import { systemClock } from '../../src/ports/clock.ts';
import { cryptoRandom } from '../../src/ports/random.ts';


const destination: Destination = { channel: 'email', to: 'owner@example.test' };

describe('a one-time code verified twice at once', () => {
  it('logs in once: the second right guess finds the code gone', async () => {
    const memory = new MemoryKv();
    const { kv, arm } = readsMeetingAt(memory, codeKey('login', destination));
    const store = new CodeStore(kv, systemClock, cryptoRandom);
    const { code } = await store.issue('login', destination);
    arm(2);
    const verdicts = await Promise.all([store.attempt('login', destination, code), store.attempt('login', destination, code)]);
    assert.deepEqual(verdicts.sort(), ['missing', 'ok'], `verdicts: ${verdicts.join(', ')} (the code worked twice)`);
    assert.equal(await memory.get(codeKey('login', destination)), null);
  });
});
