/**
 * Proof that the explorer can fail on the IM token protocol: deliberately broken variants, each
 * breaking invariant 4 (a deleted IM token is never written again) only in some interleavings,
 * which the explorer must find and report.
 */
import { describe, it } from 'node:test';
import type { Kv } from '../../src/ports/kv.ts';
import { imSettled, imTokenEndsWith, imTokensNeverResurrected } from './invariants.ts';
import { loadMutant, srcFile, writeMutant, type Replacement } from './mutant.ts';
import { ban, login, logout, type SessionProtocol } from './protocols.ts';
import { exploreSessions, WEB } from './world.ts';
import { assertViolationFound } from './verdicts.ts';

type SessionsModule = typeof import('../../src/core/sessions/service.ts');
const sessionsMutant = async (replacement: Replacement) =>
  (await loadMutant<SessionsModule>(srcFile('core/sessions/service.ts'), [replacement])).SessionService;

/** A logout that ends the session but leaves its flag's IM token as it was (neither deleted nor rotated). */
const logoutKeepsImToken = () => sessionsMutant([
  'return { ended, im: ended ? await this.im.sessionEnded(uid, flag) : null };',
  'return { ended, im: null };',
]);

/** A sweep of every session (ban, reset, revoke-all) that never tells the IM server. */
const sweepKeepsImTokens = () => sessionsMutant([
  "from './session-im.ts'",
  `from '${writeMutant(srcFile('core/sessions/session-im.ts'), [['        await tokens.releaseAll(uid);\n        return;', '        return;']])}'`,
]);

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

  // These two break the protocol in every order, the one without a race included: they show the
  // checks can fail at all, the races above that the explorer finds what only some orders show.
  it('a logout that leaves the IM token as it was: the logged-out device keeps connecting', async (t) => {
    const result = await exploreSessions({
      im: 'any',
      reduction: 'sleep-sets',
      sessions: await logoutKeepsImToken(),
      seed: { oldWeb: WEB },
      protocols: { login: login(WEB), logout: logout('oldWeb') },
      invariants: [imTokenEndsWith('logout', 'oldWeb')],
      maxRuns: 10_000,
    });
    assertViolationFound(t, result, /IM: oldWeb's IM token \w+ is still live|still connects at the IM server/, { raceOnly: false });
  });

  it('a ban that never tells the IM server: a token is live with no session left', async (t) => {
    const result = await exploreSessions({
      im: 'any',
      reduction: 'sleep-sets',
      sessions: await sweepKeepsImTokens(),
      seed: { web: WEB },
      protocols: { login: login(WEB), ban: ban() },
      invariants: [imSettled],
      maxRuns: 10_000,
    });
    assertViolationFound(t, result, /IM settled: flag 1 has no live session but IM token \w+ is live/, { raceOnly: false });
  });
});
