/**
 * Proof that the explorer can fail on the IM token protocol: deliberately broken variants, each
 * breaking invariant 4 (a deleted IM token is never written again) only in some interleavings,
 * which the explorer must find and report.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { Kv } from '../../src/ports/kv.ts';
import type { Exploration } from './scheduler.ts';
import { imSettled, imTokensNeverResurrected } from './invariants.ts';
import { login, logout, type SessionProtocol } from './protocols.ts';
import { exploreSessions, WEB } from './world.ts';

function assertViolationFound(t: TestContext, result: Exploration, expected: RegExp): void {
  const { violation } = result;
  if (violation === null) return assert.fail(`no violation in ${result.interleavings} interleavings`);
  t.diagnostic(violation.report);
  assert.match(violation.message, expected, violation.report);
  // The first interleaving runs the protocols one after the other, as listed: only a race breaks these.
  assert.ok(violation.run > 1, `broken already without a race:\n${violation.report}`);
}

const isImTokenKey = (key: string): boolean => /^user:\{[^}]*\}:im:\d$/.test(key);

/** The protocol over a Kv where these methods are replaced (the rest goes to the real one). */
function overriding(protocol: SessionProtocol, overrides: (kv: Kv) => Partial<Kv>): SessionProtocol {
  return (kv, world, name) => {
    const replaced = overrides(kv);
    const broken = new Proxy(kv, {
      get: (target, property) => {
        const value: unknown = Reflect.get(replaced, property) ?? Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    return protocol(broken, world, name);
  };
}

/** PR #225's bug: a login re-confirms the token it read with an unconditional SET, not SET XX. */
const unconditionalSet = (protocol: SessionProtocol) => overriding(protocol, (kv) => ({
  compareAndSet: (key, expected, value, options) =>
    isImTokenKey(key) ? kv.set(key, value, { ttlMs: options?.ttlMs ?? 60_000 }) : kv.compareAndSet(key, expected, value, options),
}));

/** A login re-confirms the token by writing back the very value it read: without a new nonce, a refresh leaves no trace. */
const refreshWithoutNonce = (protocol: SessionProtocol) => overriding(protocol, (kv) => ({
  compareAndSet: (key, expected, value, options) => {
    const sameToken = isImTokenKey(key) && expected.startsWith('live:') && expected.split(':')[1] === value.split(':')[1];
    return kv.compareAndSet(key, expected, sameToken ? expected : value, options);
  },
}));

describe('the explorer finds the race in a broken IM token protocol', () => {
  it('a login that re-confirms the shared token with a plain SET brings back the one the last logout deleted', async (t) => {
    const result = await exploreSessions({
      im: 'any',
      reduction: 'sleep-sets',
      seed: { oldWeb: WEB },
      protocols: { login: unconditionalSet(login(WEB)), logout: logout('oldWeb') },
      invariants: [imTokensNeverResurrected()],
      maxRuns: 10_000,
    });
    assertViolationFound(t, result, /IM token \w+ of flag 1 was written again after it ended/);
  });

  it('a refresh without a new nonce goes unseen: a concurrent logout ends the token the login just pushed, which stays connectable', async (t) => {
    const result = await exploreSessions({
      im: 'any',
      reduction: 'sleep-sets',
      seed: { oldWeb: WEB },
      protocols: { login: refreshWithoutNonce(login(WEB)), logout: logout('oldWeb') },
      invariants: [imTokensNeverResurrected(), imSettled],
      maxRuns: 10_000,
    });
    assertViolationFound(t, result, /ended, yet still connects|has 1 live session\(s\) but no live IM token/);
  });
});
