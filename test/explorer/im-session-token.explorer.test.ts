/**
 * compat.octo with an IM server (docs/octo-compat.md §2, 8): on Web and PC the session token itself
 * is the IM token, and those flags are exclusive. The IM token protocol (docs/design.md §3.4) is
 * explored with that mode on: the same invariants as im-tokens.explorer.test.ts — no IM token that
 * ended is ever written again or left connectable, the store and the IM server agree once settled —
 * over the races a browser meets: a new Web login replacing the Web session while it logs out, two
 * Web logins at once, a ban and a revoke-others racing a Web login; and, with any IM token, two
 * APP logins at once (an exclusive login ended before it answered). The world shows the IM server
 * the token's tag, as the store keeps it (world.ts), so a session's own token is what is checked.
 */
import { describe, it, type TestContext } from 'node:test';
import {
  banIsTotal, exclusiveMeansOne, finalLogout, imSettled, imTokenEndsWith, imTokensNeverResurrected, storeConsistent, type SessionInvariant,
} from './invariants.ts';
import { ban, login, logout, revokeOthers } from './protocols.ts';
import { APP, exploreSessions, PC, WEB, type SessionScenario } from './world.ts';
import { assertEveryInterleavingHolds } from './verdicts.ts';
import { defaultDevicePolicies, type DevicePolicies } from '../../src/core/sessions/policy.ts';

/** What the runtime sets up with compat.octo and an IM bridge (src/runtime/runtime.ts). */
const POLICIES: DevicePolicies = { ...defaultDevicePolicies, [WEB]: { mode: 'exclusive' }, [PC]: { mode: 'exclusive' } };
const FLAGS = [WEB, PC] as const;


/**
 * The Web session that survives the race connects with its own token once all is settled — unless
 * a logout's device_quit landed after the survivor's login had pushed (the cost docs/octo-compat.md
 * §2, 8 names: the survivor must sign in again). `ownTokenOrNone` says which: the IM server holds
 * the survivor's token, or (that race) a token nobody holds; never another session's.
 */
function ownTokenOrNone(name: string): SessionInvariant {
  return async ({ world, final }) => {
    if (!final || !world.handedOut.has(name) || !(await world.validates(name))) return null;
    const { imToken, session } = world.session(name);
    const stored = world.im?.stored.get(session.device_flag) ?? null;
    if (stored === imToken) return null;
    for (const [other, issued] of world.handedOut) {
      if (other !== name && issued.imToken === stored) return `${name} validates but the IM server holds ${other}'s token`;
    }
    return null;
  };
}

/**
 * Once settled, no session that ended holds an IM token that still connects (unless a live session
 * was handed the same shared token). An exclusive login ended by a concurrent one before it answered
 * must not leave its token at the IM server after the replacing login's.
 */
const endedTokensDead: SessionInvariant = async ({ world, final }) => {
  if (!final || world.im === null) return null;
  const live = new Set<string>();
  const ended: [string, string, number][] = [];
  for (const [name, { imToken, session }] of world.handedOut) {
    if (imToken === undefined) continue;
    if (await world.validates(name)) live.add(imToken);
    else ended.push([name, imToken, session.device_flag]);
  }
  for (const [name, token, flag] of ended) {
    if (!live.has(token) && world.im.connectable.get(flag as 0 | 1 | 2)?.has(token)) return `${name} has ended, yet its IM token still connects`;
  }
  return null;
};

const imInvariants: readonly SessionInvariant[] = [imTokensNeverResurrected(), storeConsistent, imSettled, endedTokensDead];

async function assertHolds(
  t: TestContext,
  { im = 'any', maxRuns = 10_000, invariants, ...scenario }: Omit<SessionScenario, 'maxRuns' | 'reduction'> & { maxRuns?: number },
  sessionTokens = true,
): Promise<void> {
  const result = await exploreSessions({
    ...scenario,
    im,
    maxRuns,
    reduction: 'sleep-sets',
    ...(sessionTokens ? { policies: POLICIES, sessionTokenFlags: FLAGS } : {}),
    invariants: [...imInvariants, ...invariants],
  });
  assertEveryInterleavingHolds(t, result);
}

describe('an exclusive login ended before it answered (any IM token), under every interleaving', () => {
  it('two APP logins at once: the one replaced before it answered leaves no IM token connecting', async (t) => {
    await assertHolds(t, {
      im: 'with-commit',
      protocols: { login1: login(APP), login2: login(APP) },
      invariants: [exclusiveMeansOne(['login1', 'login2'])],
      maxRuns: 20_000,
    }, false);
  });
});

describe('the session token as the IM token (compat.octo), under every interleaving', () => {
  it('a Web login replacing the Web session while it logs out: the logged-out token never connects again', async (t) => {
    await assertHolds(t, {
      seed: { oldWeb: WEB },
      protocols: { login: login(WEB), logout: logout('oldWeb') },
      invariants: [imTokenEndsWith('logout', 'oldWeb'), finalLogout('logout', ['oldWeb']), exclusiveMeansOne(['login']), ownTokenOrNone('login')],
    });
  });

  it('two Web logins at once: one survives, and the one it replaced leaves no token connecting', async (t) => {
    await assertHolds(t, {
      im: 'with-commit',
      protocols: { login1: login(WEB), login2: login(WEB) },
      invariants: [exclusiveMeansOne(['login1', 'login2']), ownTokenOrNone('login1'), ownTokenOrNone('login2')],
      maxRuns: 20_000,
    });
  });

  it('a ban racing a Web login: no token of the user is left, in the store or at the IM server', async (t) => {
    await assertHolds(t, {
      im: 'with-commit',
      protocols: { login: login(WEB), ban: ban() },
      invariants: [banIsTotal('ban')],
    });
  });

  it('revoke-others from the app racing a Web login: the revoked Web token dies', async (t) => {
    await assertHolds(t, {
      im: 'with-commit',
      seed: { web: WEB, app: APP },
      protocols: { revokeOthers: revokeOthers('app'), login: login(WEB) },
      invariants: [imTokenEndsWith('revokeOthers', 'web'), finalLogout('revokeOthers', ['web']), ownTokenOrNone('login')],
    });
  });
});
