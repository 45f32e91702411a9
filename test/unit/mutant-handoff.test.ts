/**
 * Kills the Stryker survivors of src/flows/oidc/handoff.ts (test/mutation/report.md): the handoff
 * code lives 60 s and no longer, a used code stays "used" (410) only for that same minute, a
 * colliding code is never written over another login's, and a code presented without its binding
 * tells its owner once per code.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { createHandoff, firstBindingMismatch, lookupHandoff, markHandoffUsed, HANDOFF_TTL_MS, type Handoff } from '../../src/flows/oidc/handoff.ts';
import { s256 } from '../../src/flows/oidc/binding.ts';
import { cryptoRandom } from '../../src/ports/random.ts';

const handoff = { provider: 'idp', issuer: 'https://idp.test', uid: 'u1', identityId: 'i1' } as unknown as Handoff;

function world(): { kv: MemoryKv; advance: (ms: number) => void } {
  let now = 1_000_000;
  return { kv: new MemoryKv({ now: () => now }), advance: (ms) => { now += ms; } };
}

describe('the SSO handoff code', () => {
  it('expires after 60 s, unused', async () => {
    const { kv, advance } = world();
    const code = await createHandoff(kv, cryptoRandom, handoff);
    advance(HANDOFF_TTL_MS - 1);
    assert.equal((await lookupHandoff(kv, code)).status, 'ready');
    advance(2);
    assert.equal((await lookupHandoff(kv, code)).status, 'unknown');
  });

  it('once used, says "used" until the code would have expired, and is then forgotten', async () => {
    const { kv, advance } = world();
    const code = await createHandoff(kv, cryptoRandom, handoff);
    const found = await lookupHandoff(kv, code);
    assert.equal(found.status, 'ready');
    if (found.status !== 'ready') return;
    advance(30_000);
    assert.equal(await markHandoffUsed(kv, code, found.raw), true);
    assert.equal((await lookupHandoff(kv, code)).status, 'used');
    // Nodes of two releases share the store during a rolling deploy: the marker's text is part of the format.
    assert.equal(await kv.get(`oidc:handoff:${s256(code)}`), 'used');
    advance(HANDOFF_TTL_MS - 30_000 + 1);
    assert.equal((await lookupHandoff(kv, code)).status, 'unknown', 'the used marker outlived the code');
  });

  it('is never written over another login\'s code', async () => {
    const { kv } = world();
    const sameBytes = { bytes: (n: number) => Buffer.alloc(n, 1), int: () => 0 };
    await createHandoff(kv, sameBytes, handoff);
    await assert.rejects(createHandoff(kv, sameBytes, { ...handoff, uid: 'u2' }), /oidc handoff collision/);
  });

  it('reports a binding mismatch once per code, for 60 s', async () => {
    const { kv, advance } = world();
    assert.equal(await firstBindingMismatch(kv, 'code-a'), true);
    assert.equal(await firstBindingMismatch(kv, 'code-a'), false);
    assert.equal(await firstBindingMismatch(kv, 'code-b'), true, 'another code shares the first one\'s marker');
    advance(HANDOFF_TTL_MS + 1);
    assert.equal(await firstBindingMismatch(kv, 'code-a'), true, 'the marker outlived the code');
  });
});
