/**
 * The token mirror into octo-server's Redis (src/core/sessions/octo-mirror.ts, docs/octo-compat.md
 * §3) under every interleaving: a login's mirror write racing whatever ends its session (a second
 * phone login replacing it, a ban, another session's revoke-others, a logout of another session)
 * never leaves a `token:<t>` key behind for a session that ended, and never loses the key of one
 * that lives. octo-server's Redis is modelled by keys of its own in the scheduled store (`octo:…`),
 * so every mirror read and write is a scheduling point like any other store call.
 *
 * The protocols do what the production code does: a login is SessionService.issue and then the
 * mirror write (flows/start-session.ts), an ending reaches the mirror through onEnded
 * (runtime/runtime.ts), and the ban is the production setAccountStatus.
 */
import { describe, it } from 'node:test';
import { setAccountStatus } from '../../src/core/accounts.ts';
import { OctoMirror, OCTO_MIRROR_QUEUE_KEY, octoTokenValue } from '../../src/core/sessions/octo-mirror.ts';
import { SessionService } from '../../src/core/sessions/service.ts';
import type { DeviceFlag } from '../../src/core/sessions/policy.ts';
import type { Kv } from '../../src/ports/kv.ts';
import { explore, type Exploration, type Invariant, type Protocol } from './scheduler.ts';
import { loadMutant, srcFile } from './mutant.ts';
import { APP, asStatus, loginInput, SessionWorld, statusKey, UID, WEB } from './world.ts';
import { assertEveryInterleavingHolds, assertViolationFound } from './verdicts.ts';

const TTL_MS = 30 * 24 * 3600 * 1000;
const TOKEN_PREFIX = 'octo:token:';
const SID_PREFIX = 'octo:sid:';

type MirrorClass = typeof OctoMirror;

/** The world of one run: SessionWorld, and the mirror class under test (production or a mutant). */
class MirrorWorld {
  readonly sessions: SessionWorld;
  readonly Mirror: MirrorClass;

  constructor(sessions: SessionWorld, Mirror: MirrorClass) {
    this.sessions = sessions;
    this.Mirror = Mirror;
  }

  mirror(kv: Kv): OctoMirror {
    const world = this.sessions;
    return new this.Mirror({
      kv, mirror: kv, clock: world.clock, tokenPrefix: TOKEN_PREFIX, sidPrefix: SID_PREFIX, tokenTtlMs: TTL_MS, retryIntervalMs: 1000, retryMaxIntervalMs: 1000,
    });
  }

  /** The real SessionService over `kv`, whose endings reach the mirror through onEnded, as in runtime.ts. */
  service(kv: Kv, owner: string): SessionService {
    const world = this.sessions;
    const mirror = this.mirror(kv);
    return new SessionService({
      kv, clock: world.clock, random: world.random(owner), policies: world.policies, ttlMs: TTL_MS,
      accountStatus: async (uid) => asStatus(await kv.get(statusKey(uid))),
      onEnded: async (session) => {
        await mirror.ended(session);
      },
    });
  }

  /** A login as start-session.ts makes it: issue, then the mirror write before the token is handed out. */
  async login(kv: Kv, name: string, flag: DeviceFlag): Promise<void> {
    const world = this.sessions;
    let issued;
    try {
      issued = await this.service(kv, name).issue(loginInput(UID, flag, name));
    } catch {
      world.refused.add(name);
      return;
    }
    await this.mirror(kv).started(issued.token, issued.session, { uid: UID, name, role: 'user' });
    world.handedOut.set(name, issued);
  }
}

type MirrorProtocol = Protocol<MirrorWorld>;

const login = (flag: DeviceFlag): MirrorProtocol => (kv, world, name) => world.login(kv, name, flag);
const logout = (target: string): MirrorProtocol => async (kv, world, name) => {
  await world.service(kv, name).logout(world.sessions.session(target).session);
};
const revokeOthers = (keep: string): MirrorProtocol => async (kv, world, name) => {
  await world.service(kv, name).revokeOthers(UID, world.sessions.session(keep).session.sid);
};
const ban = (): MirrorProtocol => async (kv, world, name) => {
  await setAccountStatus({ accounts: world.sessions.accounts(kv), sessions: world.service(kv, name), clock: world.sessions.clock }, UID, 'banned');
};

/** A handed-out session's mirror key, read straight from the store. */
async function mirrored(world: MirrorWorld, name: string): Promise<string | null> {
  return world.sessions.store.get(`${TOKEN_PREFIX}${world.sessions.session(name).token}`);
}

/**
 * Once `protocol` returned, none of `targets` is accepted by octo-server (its key is gone); a login
 * that returned is a target only if its session no longer validates.
 */
function mirrorFinalLogout(protocol: string, targets: readonly string[]): Invariant<MirrorWorld> {
  return async ({ world, returned }) => {
    if (!returned(protocol)) return null;
    for (const target of targets) {
      if (!world.sessions.handedOut.has(target)) continue;
      if (await world.sessions.validates(target)) continue;
      if ((await mirrored(world, target)) !== null) return `mirror: ${target}'s token:<t> is still there after ${protocol} returned`;
    }
    return null;
  };
}

/**
 * The settled state: every token key in the mirror belongs to a session that validates, every
 * handed-out session that validates has its key (uid@name@role), and nothing is owed.
 */
const mirrorFollowsSessions: Invariant<MirrorWorld> = async ({ world, final }) => {
  if (!final) return null;
  const { store } = world.sessions;
  const live = new Map<string, string>();
  for (const [name, issued] of world.sessions.handedOut) {
    if (await world.sessions.validates(name)) live.set(issued.token, name);
  }
  for (const key of store.keys().filter((k) => k.startsWith(TOKEN_PREFIX))) {
    const token = key.slice(TOKEN_PREFIX.length);
    if (!live.has(token) && (await store.get(key)) !== null) {
      const owner = [...world.sessions.handedOut].find(([, issued]) => issued.token === token)?.[0] ?? 'a login that never answered';
      return `mirror: token:<t> of ${owner} is left, its session ended`;
    }
  }
  for (const [token, name] of live) {
    if ((await store.get(`${TOKEN_PREFIX}${token}`)) !== octoTokenValue({ uid: UID, name, role: 'user' })) return `mirror: ${name} validates but has no token:<t>`;
  }
  const owed = Object.keys(await store.hgetall(OCTO_MIRROR_QUEUE_KEY));
  return owed.length === 0 ? null : `mirror: ${owed.length} removal(s) still owed with the mirror up`;
};

interface MirrorScenario {
  readonly seed?: Readonly<Record<string, DeviceFlag>>;
  readonly protocols: Readonly<Record<string, MirrorProtocol>>;
  readonly invariants: readonly Invariant<MirrorWorld>[];
  readonly maxRuns: number;
  readonly Mirror?: MirrorClass;
}

function exploreMirror(scenario: MirrorScenario): Promise<Exploration> {
  return explore({
    setup: async () => {
      const sessions = await SessionWorld.create();
      const world = new MirrorWorld(sessions, scenario.Mirror ?? OctoMirror);
      // Logged in (and mirrored) before the race, straight on the store.
      for (const [name, flag] of Object.entries(scenario.seed ?? {})) {
        sessions.seeded.add(name);
        await world.login(sessions.store, name, flag);
      }
      return { world, store: sessions.store };
    },
    protocols: scenario.protocols,
    invariants: scenario.invariants,
    maxRuns: scenario.maxRuns,
    describe: (world, line) => world.sessions.describe(line),
    reduction: 'sleep-sets',
  });
}

/** The production mirror with its login's re-check removed: the write is unconditional. */
const unconditionalWrite = async (): Promise<MirrorClass> =>
  (await loadMutant<typeof import('../../src/core/sessions/octo-mirror.ts')>(srcFile('core/sessions/octo-mirror.ts'), [[
    '    if ((await kv.get(sessionKey(session.sid))) !== null) return true;\n    // Removed by the token itself: the ending may have looked for the sid key before it was written.\n    await this.ended(session, token);\n    return false;',
    '    return true;',
  ]])).OctoMirror;

/**
 * The removal as first written: the token looked up by the sid key even when the caller knows it,
 * and the sid key deleted blindly. An ending that looked before a login wrote the sid key then
 * erases it, and the login's own clean-up finds no token to remove.
 */
const blindSidKeyRemoval = async (): Promise<MirrorClass> =>
  (await loadMutant<typeof import('../../src/core/sessions/octo-mirror.ts')>(srcFile('core/sessions/octo-mirror.ts'), [[
    '      const token = known ?? (await mirror.get(this.#sidKey(sid)));\n      if (token !== null) {\n        await mirror.del(this.tokenKey(token));\n        await mirror.compareAndDelete(this.#sidKey(sid), token);\n      }',
    '      const token = await mirror.get(this.#sidKey(sid));\n      if (token !== null) await mirror.del(this.tokenKey(token));\n      await mirror.del(this.#sidKey(sid));',
  ]])).OctoMirror;

describe('the octo token mirror under every interleaving', () => {
  it('a second phone login replacing the first while it writes its mirror keys leaves only the second\'s', async (t) => {
    const result = await exploreMirror({
      protocols: { login1: login(APP), login2: login(APP) },
      invariants: [mirrorFinalLogout('login1', ['login2']), mirrorFinalLogout('login2', ['login1']), mirrorFollowsSessions],
      maxRuns: 50_000,
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('a ban racing a Web login leaves no token:<t> of the user', async (t) => {
    const result = await exploreMirror({
      seed: { web: WEB },
      protocols: { login: login(WEB), ban: ban() },
      invariants: [mirrorFinalLogout('ban', ['web', 'login']), mirrorFollowsSessions],
      maxRuns: 50_000,
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('a logout racing a login removes the logged-out key and keeps the new one', async (t) => {
    const result = await exploreMirror({
      seed: { oldWeb: WEB },
      protocols: { logout: logout('oldWeb'), login: login(WEB) },
      invariants: [mirrorFinalLogout('logout', ['oldWeb']), mirrorFollowsSessions],
      maxRuns: 50_000,
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('revoke-others from the phone racing a Web login removes the key of every session it ended', async (t) => {
    const result = await exploreMirror({
      seed: { app: APP },
      protocols: { revokeOthers: revokeOthers('app'), login: login(WEB) },
      invariants: [mirrorFinalLogout('revokeOthers', ['login']), mirrorFollowsSessions],
      maxRuns: 50_000,
    });
    assertEveryInterleavingHolds(t, result);
  });
});

describe('broken variants of the octo token mirror are caught', () => {
  it('an unconditional mirror write (no re-read of the session after it) resurrects a banned login\'s key', async (t) => {
    const result = await exploreMirror({
      protocols: { login: login(WEB), ban: ban() },
      invariants: [mirrorFinalLogout('ban', ['login']), mirrorFollowsSessions],
      maxRuns: 50_000,
      Mirror: await unconditionalWrite(),
    });
    assertViolationFound(t, result, /mirror: .*(still there after ban returned|is left, its session ended)/);
  });

  it('an unconditional mirror write outlives a sign-out of the new session by another device (revoke-others)', async (t) => {
    const result = await exploreMirror({
      seed: { app: APP },
      protocols: { revokeOthers: revokeOthers('app'), login: login(WEB) },
      invariants: [mirrorFinalLogout('revokeOthers', ['login']), mirrorFollowsSessions],
      maxRuns: 50_000,
      Mirror: await unconditionalWrite(),
    });
    assertViolationFound(t, result, /mirror: .*(still there after revokeOthers returned|is left, its session ended)/);
  });

  it('an unconditional mirror write leaves the replaced phone\'s key behind', async (t) => {
    const result = await exploreMirror({
      protocols: { login1: login(APP), login2: login(APP) },
      invariants: [mirrorFollowsSessions],
      maxRuns: 50_000,
      Mirror: await unconditionalWrite(),
    });
    assertViolationFound(t, result, /mirror: token:<t> of .* is left/);
  });

  it('a blind removal of the sid key by an ending that found nothing loses a racing login\'s key', async (t) => {
    const result = await exploreMirror({
      seed: { app: APP },
      protocols: { revokeOthers: revokeOthers('app'), login: login(WEB) },
      invariants: [mirrorFollowsSessions],
      maxRuns: 50_000,
      Mirror: await blindSidKeyRemoval(),
    });
    assertViolationFound(t, result, /mirror: token:<t> of .* is left/);
  });
});
