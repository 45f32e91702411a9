/**
 * The shared per-(uid, flag) IM token protocol (docs/design.md §3.4) under every interleaving: the real
 * SessionService with its IM step, over the scheduled Kv, against the IM server model. Invariant 4
 * — a deleted IM token is never written again — is checked after every step, in the store and at
 * the IM server, with invariants 1, 2 and 5 and, once settled, the agreement of store and IM server.
 *
 * Races of two protocols run with IM timing 'any': every call to the IM server is a choice point
 * of its own, so every order in which the IM server could receive them is tried (an update that
 * left before a logout and lands after its device_quit). The race of three runs with timing
 * 'with-commit' (each IM call lands in the step that commits it, after any number of other
 * requests' steps since the read that decided it): every order of every Kv call, and the late
 * landings that matter, in a few thousand orders instead of millions. See im-double.ts.
 */
import { describe, it, type TestContext } from 'node:test';
import {
  banIsTotal, exclusiveMeansOne, finalLogout, imSettled, imTokenEndsWith, imTokensNeverResurrected, noCollateral,
  storeConsistent, type SessionInvariant,
} from './invariants.ts';
import { ban, login, logout, revokeAll, revokeOthers } from './protocols.ts';
import { APP, exploreSessions, WEB, type SessionScenario } from './world.ts';
import { assertEveryInterleavingHolds } from './verdicts.ts';

/** Invariants every IM scenario checks, whatever it races. */
const imInvariants: readonly SessionInvariant[] = [imTokensNeverResurrected(), storeConsistent, imSettled];

/**
 * Every interleaving of an IM race holds: `invariants` on top of imInvariants, with sleep-set
 * reduction, IM timing 'any' and 10,000 runs unless the scenario says otherwise.
 */
async function assertImRaceHolds(
  t: TestContext,
  { im = 'any', maxRuns = 10_000, invariants, ...scenario }: Omit<SessionScenario, 'maxRuns' | 'reduction'> & { maxRuns?: number },
): Promise<void> {
  const result = await exploreSessions({ ...scenario, im, maxRuns, reduction: 'sleep-sets', invariants: [...imInvariants, ...invariants] });
  assertEveryInterleavingHolds(t, result);
}

describe('the IM token protocol under every interleaving', () => {
  it('a Web login racing the last Web logout: the logged-out token never comes back', async (t) => {
    await assertImRaceHolds(t, {
      seed: { oldWeb: WEB },
      protocols: { login: login(WEB), logout: logout('oldWeb') },
      invariants: [imTokenEndsWith('logout', 'oldWeb'), finalLogout('logout', ['oldWeb']), noCollateral(['login'])],
    });
  });

  it('two Web logins and one Web logout: the logged-out token never comes back', async (t) => {
    await assertImRaceHolds(t, {
      im: 'with-commit',
      seed: { oldWeb: WEB },
      protocols: { login1: login(WEB), login2: login(WEB), logout: logout('oldWeb') },
      invariants: [imTokenEndsWith('logout', 'oldWeb'), finalLogout('logout', ['oldWeb']), noCollateral(['login1', 'login2'])],
      maxRuns: 20_000,
    });
  });

  it('two Web logins share one token, whichever creates it', async (t) => {
    const shareOne: SessionInvariant = async ({ world, final }) => {
      if (!final) return null;
      const [a, b] = [world.session('login1').imToken, world.session('login2').imToken];
      return a !== undefined && a === b ? null : `two Web logins got different IM tokens ${a} and ${b}`;
    };
    await assertImRaceHolds(t, {
      protocols: { login1: login(WEB), login2: login(WEB) },
      invariants: [shareOne, noCollateral(['login1', 'login2'])],
    });
  });

  it('two Web logouts at once (the last two): both tokens\' holders are cut off, nothing is left', async (t) => {
    await assertImRaceHolds(t, {
      seed: { web1: WEB, web2: WEB },
      protocols: { logout1: logout('web1'), logout2: logout('web2') },
      invariants: [imTokenEndsWith('logout1', 'web1'), imTokenEndsWith('logout2', 'web2')],
    });
  });

  it('revoke-others from the PC racing a Web login: the revoked Web token dies, the new Web session keeps one', async (t) => {
    await assertImRaceHolds(t, {
      seed: { web: WEB, pc: 2 },
      protocols: { revokeOthers: revokeOthers('pc'), login: login(WEB) },
      invariants: [imTokenEndsWith('revokeOthers', 'web'), finalLogout('revokeOthers', ['web'])],
    });
  });

  it('an APP login replacing the APP session while it logs out: one APP token, the old one dead', async (t) => {
    await assertImRaceHolds(t, {
      seed: { oldApp: APP },
      protocols: { login: login(APP), logout: logout('oldApp') },
      invariants: [imTokenEndsWith('logout', 'oldApp'), exclusiveMeansOne(['login'])],
    });
  });

  it('a password reset (revoke-all) racing a Web login: the old token dies; a login that survives the sweep has a working one', async (t) => {
    await assertImRaceHolds(t, {
      seed: { web: WEB },
      protocols: { login: login(WEB), reset: revokeAll('password') },
      invariants: [imTokenEndsWith('reset', 'web'), finalLogout('reset', ['web'])],
    });
  });

  it('a ban racing a Web login: no token of the user is left, in the store or at the IM server', async (t) => {
    await assertImRaceHolds(t, {
      seed: { web: WEB },
      protocols: { login: login(WEB), ban: ban() },
      invariants: [banIsTotal('ban'), imTokenEndsWith('ban', 'web')],
    });
  });
});
