/**
 * Proof that the explorer can fail: deliberately broken variants of the session protocols, each
 * breaking an invariant only in some interleavings, and the explorer must find one and report it.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { LatchkeyError } from '../../src/core/errors.ts';
import type { Kv } from '../../src/ports/kv.ts';
import type { Exploration } from './scheduler.ts';
import { banIsTotal, exclusiveMeansOne, storeConsistent } from './invariants.ts';
import { ban, login, logout, type SessionProtocol } from './protocols.ts';
import { APP, asStatus, exploreSessions, loginInput, statusKey, UID } from './world.ts';

function assertViolationFound(t: TestContext, result: Exploration, expected: RegExp): void {
  const { violation } = result;
  if (violation === null) return assert.fail(`no violation in ${result.interleavings} interleavings`);
  t.diagnostic(violation.report);
  assert.match(violation.message, expected, violation.report);
  // The first interleaving runs the protocols one after the other, as listed: only a race breaks these.
  assert.ok(violation.run > 1, `broken already without a race:\n${violation.report}`);
}

/** The protocol, over a Kv whose compare-and-delete of a device slot is a blind DEL. */
function withBlindSlotDelete(protocol: SessionProtocol): SessionProtocol {
  return (kv, world, name) => {
    const compareAndDelete: Kv['compareAndDelete'] = async (key, expected) =>
      key.includes(':slot:') ? kv.del(key) : kv.compareAndDelete(key, expected);
    return protocol(overriding(kv, { compareAndDelete }), world, name);
  };
}

function overriding(kv: Kv, overrides: Partial<Kv>): Kv {
  return new Proxy(kv, {
    get: (target, property) => {
      const value: unknown = Reflect.get(overrides, property) ?? Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** Ban in the wrong order: sweep the index, then set the status. */
const banSweepingFirst: SessionProtocol = async (kv, world, name) => {
  await world.service(kv, name).revokeAll(UID, 'ban');
  await kv.set(statusKey(UID), 'banned');
};

/** A login that checks the status before joining the index, and trusts that stale answer afterwards. */
const loginCheckingStatusFirst: SessionProtocol = async (kv, world, name) => {
  const status = asStatus(await kv.get(statusKey(UID)));
  try {
    world.handedOut.set(name, await world.service(kv, name, async () => status).issue(loginInput(UID, APP, name)));
  } catch (error) {
    if (!(error instanceof LatchkeyError && error.code === 'account_disabled')) throw error;
    world.refused.add(name);
  }
};

describe('the explorer finds the race in a broken protocol', () => {
  it('a logout that blindly deletes the APP slot strips a concurrent login of it', async (t) => {
    const result = await exploreSessions({
      seed: { oldApp: APP },
      protocols: { logout: withBlindSlotDelete(logout('oldApp')), login: login(APP) },
      invariants: [storeConsistent, exclusiveMeansOne(['login'])],
      maxRuns: 10_000,
    });
    assertViolationFound(t, result, /login is live but slot 0 holds null/);
  });

  it('a ban that sweeps before setting the status misses a concurrent login', async (t) => {
    const result = await exploreSessions({
      protocols: { login: login(APP), ban: banSweepingFirst },
      invariants: [banIsTotal('ban')],
      maxRuns: 10_000,
    });
    assertViolationFound(t, result, /ban is total: login validates after the ban/);
  });

  it('a login that checks the status before joining the index survives a concurrent ban', async (t) => {
    const result = await exploreSessions({
      protocols: { login: loginCheckingStatusFirst, ban: ban() },
      invariants: [banIsTotal('ban')],
      maxRuns: 10_000,
    });
    assertViolationFound(t, result, /ban is total: login validates after the ban/);
  });
});
