/**
 * Every interleaving of the real session protocols, raced in pairs over the scheduled Kv, keeps
 * the invariants of docs/design.md §3.2. Each scenario seeds the state before the race and explores the
 * whole space: the search must be exhausted, never cut short, and hold more than one order.
 */
import { describe, it } from 'node:test';
import { defaultDevicePolicies, type SessionLimit } from '../../src/core/sessions/policy.ts';
import {
  banIsTotal, capKeepsOne, exclusiveMeansOne, finalLogout, noCollateral, refusedLeftNothing, slotsReleased, storeConsistent, tombstonesSayWhy, withinSessionLimit,
} from './invariants.ts';
import { ban, login, logout, revoke, revokeAll, revokeOthers } from './protocols.ts';
import { APP, exploreSessions, PC, WEB } from './world.ts';
import { assertEveryInterleavingHolds } from './verdicts.ts';

describe('session protocols under every interleaving', () => {
  it('two concurrent APP logins leave exactly one APP session, which holds the slot', async (t) => {
    const result = await exploreSessions({
      seed: { web: WEB },
      protocols: { login1: login(APP), login2: login(APP) },
      invariants: [exclusiveMeansOne(['login1', 'login2']), noCollateral(['web']), storeConsistent, slotsReleased],
      maxRuns: 50_000,
      reduction: 'sleep-sets',
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('two APP logins replacing an existing APP session leave exactly one APP session, which holds the slot', async (t) => {
    // The slot is taken, so both logins go through the compare-and-set of the slot loop (an empty
    // slot is taken with SET NX, which the scenario above covers): each must end what it displaced.
    const result = await exploreSessions({
      seed: { oldApp: APP },
      protocols: { login1: login(APP), login2: login(APP) },
      invariants: [finalLogout('login1', ['oldApp']), finalLogout('login2', ['oldApp']), exclusiveMeansOne(['login1', 'login2']), storeConsistent, slotsReleased],
      maxRuns: 20_000,
      reduction: 'sleep-sets',
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('a Web logout racing a Web login ends only the logged-out session', async (t) => {
    const result = await exploreSessions({
      seed: { oldWeb: WEB, app: APP },
      protocols: { logout: logout('oldWeb'), login: login(WEB) },
      invariants: [finalLogout('logout', ['oldWeb']), noCollateral(['login', 'app']), storeConsistent, slotsReleased],
      maxRuns: 10_000,
      reduction: 'sleep-sets',
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('a logout racing revoke-others from a third session ends both targets and keeps the third', async (t) => {
    const result = await exploreSessions({
      seed: { web: WEB, app: APP, pc: PC },
      protocols: { logout: logout('web'), revokeOthers: revokeOthers('pc') },
      invariants: [finalLogout('logout', ['web']), finalLogout('revokeOthers', ['web', 'app']), noCollateral(['pc']), storeConsistent, slotsReleased],
      maxRuns: 50_000,
      reduction: 'sleep-sets',
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('a ban racing an APP login leaves no session of the user, the concurrent one included', async (t) => {
    const result = await exploreSessions({
      protocols: { login: login(APP), ban: ban() },
      invariants: [banIsTotal('ban'), storeConsistent, slotsReleased],
      maxRuns: 10_000,
      reduction: 'sleep-sets',
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('a ban sweeping a Web session while a Web login joins leaves no session of the user', async (t) => {
    const result = await exploreSessions({
      seed: { web: WEB },
      protocols: { login: login(WEB), ban: ban() },
      invariants: [banIsTotal('ban'), storeConsistent, slotsReleased],
      maxRuns: 50_000,
      reduction: 'sleep-sets',
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('a revoke-all racing an APP login replacing the APP session: the old one ends, the store stays coherent', async (t) => {
    const result = await exploreSessions({
      seed: { oldApp: APP },
      protocols: { login: login(APP), revokeAll: revokeAll('all') },
      invariants: [finalLogout('revokeAll', ['oldApp']), finalLogout('login', ['oldApp']), storeConsistent, slotsReleased],
      maxRuns: 10_000,
      reduction: 'sleep-sets',
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('revoking the APP session while a new APP login replaces it keeps the new one', async (t) => {
    const result = await exploreSessions({
      seed: { oldApp: APP, web: WEB },
      protocols: { revoke: revoke('oldApp'), login: login(APP) },
      invariants: [finalLogout('revoke', ['oldApp']), exclusiveMeansOne(['login']), noCollateral(['web']), storeConsistent, slotsReleased],
      maxRuns: 10_000,
      reduction: 'sleep-sets',
    });
    assertEveryInterleavingHolds(t, result);
  });
  it('two Web logins under a cap of 1 never evict each other', async (t) => {
    const capOfOne = { ...defaultDevicePolicies, [WEB]: { mode: 'multi', cap: 1 } } as const;
    const result = await exploreSessions({
      policies: capOfOne,
      protocols: { login1: login(WEB), login2: login(WEB) },
      invariants: [capKeepsOne(['login1', 'login2']), storeConsistent],
      maxRuns: 50_000,
      reduction: 'sleep-sets',
    });
    assertEveryInterleavingHolds(t, result);
  });
});

describe('why a session ended, under every interleaving (docs/design.md §3.1)', () => {
  it('a logout racing the APP login that replaces the same session: the token tells the reason of whichever ended it', async (t) => {
    const result = await exploreSessions({
      seed: { oldApp: APP },
      protocols: { logout: logout('oldApp'), login: login(APP) },
      invariants: [tombstonesSayWhy, finalLogout('logout', ['oldApp']), storeConsistent],
      maxRuns: 20_000,
      reduction: 'sleep-sets',
      tombstones: true,
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('a revoke racing a ban of the same session: one reason, the winner\'s; the new login is told nothing while live', async (t) => {
    const result = await exploreSessions({
      seed: { web: WEB },
      protocols: { revoke: revoke('web'), ban: ban(), login: login(PC) },
      invariants: [tombstonesSayWhy, storeConsistent],
      maxRuns: 50_000,
      reduction: 'sleep-sets',
      tombstones: true,
    });
    assertEveryInterleavingHolds(t, result);
  });
});

describe('session limits under every interleaving (docs/design.md §3.2, 7)', () => {
  const evictOne: SessionLimit = { flags: [WEB, PC], max: 1, onExceed: 'evict_oldest' };
  const rejectOne: SessionLimit = { flags: [WEB, PC], max: 1, onExceed: 'reject_new' };

  it('evict_oldest: two concurrent logins of the group leave at most max live, each in the slot', async (t) => {
    const result = await exploreSessions({
      limits: [evictOne],
      protocols: { login1: login(WEB), login2: login(PC) },
      invariants: [withinSessionLimit(evictOne), capKeepsOne(['login1', 'login2']), storeConsistent, slotsReleased],
      maxRuns: 100_000,
      reduction: 'sleep-sets',
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('evict_oldest: a login racing the logout of the seat holder keeps the limit and ends the logged-out session', async (t) => {
    const result = await exploreSessions({
      limits: [evictOne],
      seed: { web: WEB, app: APP },
      protocols: { logout: logout('web'), login: login(PC) },
      invariants: [withinSessionLimit(evictOne), finalLogout('logout', ['web']), noCollateral(['login', 'app']), storeConsistent, slotsReleased],
      maxRuns: 50_000,
      reduction: 'sleep-sets',
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('reject_new: two concurrent logins on an empty group leave at most max live; a refused one leaves nothing', async (t) => {
    const result = await exploreSessions({
      limits: [rejectOne],
      protocols: { login1: login(WEB), login2: login(PC) },
      invariants: [withinSessionLimit(rejectOne), refusedLeftNothing, storeConsistent, slotsReleased],
      maxRuns: 100_000,
      reduction: 'sleep-sets',
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('reject_new: two concurrent logins for the last seat: at most one gets it, the seated session stays', async (t) => {
    const rejectTwo: SessionLimit = { flags: [WEB, PC], max: 2, onExceed: 'reject_new' };
    const result = await exploreSessions({
      limits: [rejectTwo],
      seed: { web: WEB },
      protocols: { login1: login(WEB), login2: login(PC) },
      invariants: [withinSessionLimit(rejectTwo), refusedLeftNothing, noCollateral(['web']), storeConsistent, slotsReleased],
      maxRuns: 20_000,
      reduction: 'sleep-sets',
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('two limits sharing PC (reject_new on Web+PC, evict_oldest on PC): a PC and a Web login racing keep both', async (t) => {
    const both: SessionLimit = { flags: [WEB, PC], max: 2, onExceed: 'reject_new' };
    const pcOnly: SessionLimit = { flags: [PC], max: 1, onExceed: 'evict_oldest' };
    const result = await exploreSessions({
      limits: [both, pcOnly],
      seed: { pc: PC },
      protocols: { login1: login(PC), login2: login(WEB) },
      invariants: [withinSessionLimit(both), withinSessionLimit(pcOnly), refusedLeftNothing, storeConsistent, slotsReleased],
      maxRuns: 50_000,
      reduction: 'sleep-sets',
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('reject_new: a login racing the revoke of the seat holder keeps the limit; refused, it leaves nothing', async (t) => {
    const result = await exploreSessions({
      limits: [rejectOne],
      seed: { web: WEB },
      protocols: { revoke: revoke('web'), login: login(PC) },
      invariants: [withinSessionLimit(rejectOne), refusedLeftNothing, finalLogout('revoke', ['web']), storeConsistent, slotsReleased],
      maxRuns: 50_000,
      reduction: 'sleep-sets',
    });
    assertEveryInterleavingHolds(t, result);
  });
});
