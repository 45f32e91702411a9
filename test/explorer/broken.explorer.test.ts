/**
 * Proof that the explorer can fail: deliberately broken variants of the session protocols, each
 * breaking an invariant only in some interleavings, and the explorer must find one and report it.
 */
import { describe, it } from 'node:test';
import { LatchkeyError } from '../../src/core/errors.ts';
import { defaultDevicePolicies, type SessionLimit } from '../../src/core/sessions/policy.ts';
import type { Kv } from '../../src/ports/kv.ts';
import {
  banIsTotal, capKeepsOne, exclusiveMeansOne, finalLogout, noCollateral, refusedLeftNothing, slotsReleased, storeConsistent, tombstonesSayWhy, withinSessionLimit,
} from './invariants.ts';
import { loadMutant, srcFile, writeMutant, type Replacement } from './mutant.ts';
import { ban, login, logout, revokeAll, type SessionProtocol } from './protocols.ts';
import { APP, asStatus, exploreSessions, loginInput, PC, statusKey, UID, WEB } from './world.ts';
import { assertViolationFound } from './verdicts.ts';

/** Mutants of production modules: the real source with one bug in it (mutant.ts). */
type SessionsModule = typeof import('../../src/core/sessions/service.ts');
type AccountsModule = typeof import('../../src/core/accounts.ts');

const sessionsMutant = async (replacement: Replacement) =>
  (await loadMutant<SessionsModule>(srcFile('core/sessions/service.ts'), [replacement])).SessionService;

/** The real SessionService over a mutant of the exclusive slot's protocol (device-slot.ts). */
const slotMutant = (replacement: Replacement) =>
  sessionsMutant(["from './device-slot.ts'", `from '${writeMutant(srcFile('core/sessions/device-slot.ts'), [replacement])}'`]);

/** The slot loop writes the taken slot with a blind SET instead of a compare-and-set of what it read. */
const blindSlotSet = () => slotMutant([
  ': await kv.compareAndSet(slot, previous, taken, { ttlMs });',
  ': await kv.set(slot, taken, { ttlMs });',
]);

/** A login ends only the session the slot named first, not the ones still owed an end after it. */
const endsOnlyTheFirstDisplaced = () => slotMutant([
  "const displaced = [...new Set(previous?.split(' ') ?? [])]",
  "const displaced = [...new Set(previous?.split(' ').slice(0, 1) ?? [])]",
]);

/** The cap counts every other session of the flag, not only older ones: two new logins can evict each other. */
const capCountsNewer = () => sessionsMutant([
  '.filter((entry) => entry.flag === session.device_flag && isOlder(entry, self))',
  '.filter((entry) => entry.flag === session.device_flag && entry.sid !== self.sid)',
]);

/** A login no longer looks, after taking the slot, whether a sweep ended it meanwhile. */
const noSlotRecheck = () => slotMutant([
  '  if ((await kv.get(sessionKey(session.sid))) === null) {\n    await kv.compareAndDelete(slot, session.sid);\n  }\n',
  '',
]);

/** Every call that tries to end a session writes why, not only the one whose GETDEL ended it. */
const everyEnderWritesWhy = () => sessionsMutant([
  '    if (raw !== null) await this.#writeTombstone(sid, reason, by);\n',
  '    await this.#writeTombstone(sid, reason, by);\n',
]);

/** The real SessionService over a mutant of the group slot of session limits (limit-slot.ts). */
const limitSlotMutant = (replacement: Replacement) =>
  sessionsMutant(["from './limit-slot.ts'", `from '${writeMutant(srcFile('core/sessions/limit-slot.ts'), [replacement])}'`]);

/** The group slot written with a blind SET instead of a compare-and-set of what was read. */
const blindLimitSlotSet = () => limitSlotMutant([
  ': await kv.compareAndSet(key, raw, value, { ttlMs });',
  ': await kv.set(key, value, { ttlMs });',
]);

/** A login pushing others off the group slot without looking whether it was itself pushed off and ended meanwhile. */
const noSelfLookBeforePushing = () => limitSlotMutant([
  '      if (alive.at(-1) !== true) return { joined: true, owed: [] };\n',
  '',
]);

/** A refused login that answers 409 without undoing its session: its record and index entry stay. */
const refusalNotUndone = () => sessionsMutant(['        await this.#refuse(session);\n', '']);

/** The production ban reversed: sweep the sessions, then set the status. */
const banSweepingFirst = (): Promise<AccountsModule> => loadMutant<AccountsModule>(srcFile('core/accounts.ts'), [
  ["    await removeAccess(deps, uid, { status }, options);\n    return deps.sessions.revokeAll(uid, 'ban');",
    "    const ended = await deps.sessions.revokeAll(uid, 'ban');\n    await removeAccess(deps, uid, { status }, options);\n    return ended;"],
]);

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

  it('a logout that blindly deletes the APP slot takes it from the login that replaced it', async (t) => {
    const result = await exploreSessions({
      seed: { oldApp: APP, web: WEB },
      protocols: { logout: withBlindSlotDelete(logout('oldApp')), login: login(APP) },
      invariants: [noCollateral(['login', 'web'])],
      maxRuns: 10_000,
      reduction: 'sleep-sets',
    });
    assertViolationFound(t, result, /no collateral: login lost its device slot/);
  });

  it('an APP login that ends only the first session it displaced returns while the one owed an end still validates', async (t) => {
    const result = await exploreSessions({
      sessions: await endsOnlyTheFirstDisplaced(),
      seed: { oldApp: APP },
      protocols: { login1: login(APP), login2: login(APP) },
      invariants: [finalLogout('login1', ['oldApp']), finalLogout('login2', ['oldApp'])],
      maxRuns: 20_000,
      reduction: 'sleep-sets',
    });
    assertViolationFound(t, result, /final logout: oldApp validates after login\d returned/);
  });

  it('an APP login that does not look again after taking the slot keeps it for a session a revoke-all ended', async (t) => {
    const result = await exploreSessions({
      sessions: await noSlotRecheck(),
      protocols: { login: login(APP), reset: revokeAll('password') },
      invariants: [slotsReleased],
      maxRuns: 10_000,
      reduction: 'sleep-sets',
    });
    assertViolationFound(t, result, /slot released: slot 0 still holds login, which has ended/);
  });

  it('two Web logins under a cap of 1 that count newer sessions too evict each other', async (t) => {
    const result = await exploreSessions({
      sessions: await capCountsNewer(),
      policies: { ...defaultDevicePolicies, [WEB]: { mode: 'multi', cap: 1 } },
      protocols: { login1: login(WEB), login2: login(WEB) },
      invariants: [capKeepsOne(['login1', 'login2'])],
      maxRuns: 10_000,
      reduction: 'sleep-sets',
    });
    assertViolationFound(t, result, /cap: none of login1, login2 validates/);
  });

  it('two APP logins writing the taken slot with a blind SET both survive, replacing an existing APP session', async (t) => {
    const result = await exploreSessions({
      sessions: await blindSlotSet(),
      seed: { oldApp: APP },
      protocols: { login1: login(APP), login2: login(APP) },
      invariants: [exclusiveMeansOne(['login1', 'login2']), storeConsistent],
      maxRuns: 20_000,
      reduction: 'sleep-sets',
    });
    assertViolationFound(t, result, /exclusive means one: 2 of login1, login2 validate|both live on exclusive flag 0/);
  });

  it('the production ban reversed (sweep, then set the status) misses a concurrent login', async (t) => {
    const { setAccountStatus } = await banSweepingFirst();
    const result = await exploreSessions({
      protocols: { login: login(APP), ban: ban(setAccountStatus) },
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

describe('the explorer finds the race in a broken session limit', () => {
  it('reject_new over a group slot written with a blind SET: two logins take the last seat, one over max', async (t) => {
    const limit: SessionLimit = { flags: [WEB, PC], max: 2, onExceed: 'reject_new' };
    const result = await exploreSessions({
      sessions: await blindLimitSlotSet(),
      limits: [limit],
      seed: { web: WEB },
      protocols: { login1: login(WEB), login2: login(PC) },
      invariants: [withinSessionLimit(limit)],
      maxRuns: 20_000,
      reduction: 'sleep-sets',
    });
    assertViolationFound(t, result, /session limit: 3 sessions of flags 1,2 are live/);
  });

  it('evict_oldest over a group slot written with a blind SET: a login\'s seat is overwritten, live outside the slot', async (t) => {
    const limit: SessionLimit = { flags: [WEB, PC], max: 2, onExceed: 'evict_oldest' };
    const result = await exploreSessions({
      sessions: await blindLimitSlotSet(),
      limits: [limit],
      seed: { web: WEB },
      protocols: { login1: login(WEB), login2: login(PC) },
      invariants: [withinSessionLimit(limit)],
      maxRuns: 20_000,
      reduction: 'sleep-sets',
    });
    assertViolationFound(t, result, /session limit: (3 sessions of flags 1,2 are live|\S+ is live but not in the group slot)/);
  });

  it('evict_oldest logins that push off without looking whether they were pushed off themselves end each other', async (t) => {
    const limit: SessionLimit = { flags: [WEB, PC], max: 1, onExceed: 'evict_oldest' };
    const result = await exploreSessions({
      sessions: await noSelfLookBeforePushing(),
      limits: [limit],
      protocols: { login1: login(WEB), login2: login(PC) },
      invariants: [capKeepsOne(['login1', 'login2'])],
      maxRuns: 20_000,
      reduction: 'sleep-sets',
    });
    assertViolationFound(t, result, /cap: none of login1, login2 validates/);
  });

  it('a reject_new refusal that does not undo its session leaves it in the store', async (t) => {
    const limit: SessionLimit = { flags: [WEB, PC], max: 1, onExceed: 'reject_new' };
    const result = await exploreSessions({
      sessions: await refusalNotUndone(),
      limits: [limit],
      protocols: { login1: login(WEB), login2: login(PC) },
      invariants: [refusedLeftNothing],
      maxRuns: 20_000,
      reduction: 'sleep-sets',
    });
    // Already the first order shows it: the second login is refused there.
    assertViolationFound(t, result, /refused login: login\d (left|is still named)/, { raceOnly: false });
  });
});

describe('a broken tombstone protocol is caught', () => {
  it('a racing loser that also writes why overwrites the reason the winner gave', async (t) => {
    const result = await exploreSessions({
      seed: { oldApp: APP },
      protocols: { logout: logout('oldApp'), login: login(APP) },
      invariants: [tombstonesSayWhy],
      maxRuns: 20_000,
      tombstones: true,
      sessions: await everyEnderWritesWhy(),
    });
    assertViolationFound(t, result, /why it ended: oldApp \(ended by (logout|replaced)\) says (replaced|logout)/);
  });
});
