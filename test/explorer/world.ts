/**
 * One explorer run's world for the session protocols: a fresh MemoryKv, a fixed clock, randomness
 * from a counter (so every run mints the same tokens and a replay is a replay), the sessions whose
 * tokens clients hold, and a checker that reads the store without being scheduled.
 */
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import type { AccountRepo } from '../../src/ports/accounts.ts';
import type { Clock } from '../../src/ports/clock.ts';
import type { Kv } from '../../src/ports/kv.ts';
import type { Random } from '../../src/ports/random.ts';
import { sessionKey } from '../../src/core/sessions/keys.ts';
import { defaultDevicePolicies, type DeviceFlag, type DevicePolicies, type SessionLimit } from '../../src/core/sessions/policy.ts';
import { parseSessionRecord, type RevokeReason, type Session } from '../../src/core/sessions/record.ts';
import { SessionService, type AccountStatusReader, type IssueInput, type IssuedSession } from '../../src/core/sessions/service.ts';
import { sidOf } from '../../src/core/sessions/token.ts';
import { sessionTokenTag } from '../../src/core/sessions/im-token-value.ts';
import type { ImBridge } from '../../src/ports/im-bridge.ts';
import { explore, type Exploration, type Invariant, type Protocol } from './scheduler.ts';
import { CounterRandoms } from './counter-random.ts';
import { ImServerModel, type ImTiming } from './im-double.ts';
import { asStatus, kvAccounts, passwordKey, statusKey } from './kv-accounts.ts';

export const APP: DeviceFlag = 0;
export const WEB: DeviceFlag = 1;
export const PC: DeviceFlag = 2;
export const UID = 'u1';

const NOW = Date.UTC(2025, 0, 1);
const TTL_MS = 30 * 24 * 3600 * 1000;
const RETENTION_MS = 7 * 24 * 3600 * 1000;
const TOKEN_BYTES = 32;

/** Account status lives in the Kv so that a login's status check is a scheduling point too. */
export { asStatus, statusKey } from './kv-accounts.ts';
/** The account's password hash before the race (a reset replaces it). */
export const OLD_PASSWORD_HASH = 'hash:old';

export class SessionWorld {
  readonly store = new MemoryKv({ now: () => NOW });
  readonly clock: Clock = { now: () => NOW };
  readonly policies: DevicePolicies;
  /** Session limits across flags (docs/design.md §3.2, 7). */
  readonly limits: readonly SessionLimit[];
  /** The IM server, when the scenario runs the IM token protocol (docs/design.md §3.4). */
  readonly im: ImServerModel | null;
  /** Names of the sessions logged in before the race (not protocols: they never run). */
  readonly seeded = new Set<string>();
  readonly #randoms = new CounterRandoms();
  /** Sessions whose token a client holds: made before the race, or returned by a login in it. */
  readonly handedOut = new Map<string, IssuedSession>();
  /** Logins refused with account_disabled. */
  readonly refused = new Set<string>();
  /** Logins refused by a full reject_new session limit (409 session_limit). */
  readonly limited = new Set<string>();
  /** With tombstones on: how each ended session was ended, as told by the call whose GETDEL ended it (onEnded). */
  readonly endings = new Map<string, RevokeReason>();
  /** Whether sessions write why they ended (`ended:<sid>`, ended_retention_seconds). */
  readonly tombstones: boolean;
  /** sid → the name of the session (or login protocol) it belongs to, for readable traces. */
  readonly #names = new Map<string, string>();
  /** validate() over the store, not scheduled; its last-seen write is dropped so checking never acts. */
  readonly #checker: SessionService;

  /** The session core the protocols run: the production class, or a mutant of it (broken variants). */
  readonly #Sessions: typeof SessionService;

  /**
   * Flags whose session token is the IM token (compat.octo, docs/octo-compat.md §2, 8). The IM
   * server model and the handed-out sessions then see the token's tag, as the store does, so every
   * IM invariant compares like with like.
   */
  readonly sessionTokenFlags: readonly DeviceFlag[];

  constructor(
    policies: DevicePolicies,
    im: ImTiming | null = null,
    Sessions: typeof SessionService = SessionService,
    limits: readonly SessionLimit[] = [],
    sessionTokenFlags: readonly DeviceFlag[] = [],
    tombstones = false,
  ) {
    this.sessionTokenFlags = sessionTokenFlags;
    this.tombstones = tombstones;
    this.policies = policies;
    this.limits = limits;
    this.im = im === null ? null : new ImServerModel(im);
    this.#Sessions = Sessions;
    this.#checker = this.service(withoutWrites(this.store), 'checker');
  }

  /** A fresh world with an active account `uid`. */
  static async create(
    policies: DevicePolicies = defaultDevicePolicies,
    im: ImTiming | null = null,
    Sessions: typeof SessionService = SessionService,
    limits: readonly SessionLimit[] = [],
    sessionTokenFlags: readonly DeviceFlag[] = [],
    tombstones = false,
  ): Promise<SessionWorld> {
    const world = new SessionWorld(policies, im, Sessions, limits, sessionTokenFlags, tombstones);
    await world.store.set(statusKey(UID), 'active');
    await world.store.set(passwordKey(UID), OLD_PASSWORD_HASH);
    return world;
  }

  /** The account store over `kv` (kv-accounts.ts): its reads and writes are scheduled like any other. */
  accounts(kv: Kv): AccountRepo {
    return kvAccounts(kv, UID);
  }

  /** Randomness of its own for `owner` (a protocol), the same in every run. */
  random(owner: string): Random {
    return this.#naming(owner);
  }

  /** The real SessionService over `kv`; by default the account status is read through `kv` as well. */
  service(
    kv: Kv,
    owner: string,
    accountStatus: AccountStatusReader = async (uid) => asStatus(await kv.get(statusKey(uid))),
  ): SessionService {
    const Sessions = this.#Sessions;
    const tombstones = this.tombstones
      ? { endedRetentionMs: RETENTION_MS, onEnded: (session: Session, reason: RevokeReason) => { this.endings.set(session.sid, reason); } }
      : {};
    if (this.im === null) {
      return new Sessions({ kv, clock: this.clock, random: this.#naming(owner), policies: this.policies, limits: this.limits, ttlMs: TTL_MS, accountStatus, ...tombstones });
    }
    return new Sessions({
      ...tombstones,
      kv,
      clock: this.clock,
      random: this.#naming(owner),
      policies: this.policies,
      limits: this.limits,
      ttlMs: TTL_MS,
      accountStatus,
      im: { bridge: this.#tagged(this.im.bridgeFor(kv, owner)), quitRetry: { intervalMs: 1000, maxAttempts: 3 }, sessionTokenFlags: this.sessionTokenFlags },
    });
  }

  /** A client now holds `issued` (a login that answered, or a seeded session). */
  handOut(name: string, issued: IssuedSession): void {
    const { imToken } = issued;
    this.handedOut.set(name, imToken === undefined ? issued : { ...issued, imToken: this.#tagOf(imToken) });
  }

  /** A session token pushed as an IM token, as the store keeps it (its tag); a 32-hex IM token as it is. */
  #tagOf(token: string): string {
    return /^[A-Za-z0-9_-]{43}$/.test(token) ? sessionTokenTag(sidOf(token)) : token;
  }

  #tagged(bridge: ImBridge): ImBridge {
    if (this.sessionTokenFlags.length === 0) return bridge;
    return {
      updateToken: (update) => bridge.updateToken({ ...update, token: this.#tagOf(update.token) }),
      deviceQuit: (uid, flag) => bridge.deviceQuit(uid, flag),
    };
  }

  /** Logs in before the race, straight on the store. */
  async seed(name: string, flag: DeviceFlag): Promise<void> {
    this.seeded.add(name);
    this.handOut(name, await this.service(this.store, name).issue(loginInput(UID, flag, name)));
  }

  session(name: string): IssuedSession {
    const issued = this.handedOut.get(name);
    if (issued === undefined) throw new Error(`no session named ${name} was handed out`);
    return issued;
  }

  async validates(name: string): Promise<boolean> {
    return this.validatesToken(this.session(name).token);
  }

  /** Whether a token validates now, read without being scheduled and without writing. */
  async validatesToken(token: string): Promise<boolean> {
    return (await this.#checker.validate(token)) !== null;
  }

  /** Every session record in the store, read directly. */
  async liveSessions(uid: string): Promise<Session[]> {
    const sessions: Session[] = [];
    for (const key of this.store.keys().filter((k) => k.startsWith(sessionKey('')))) {
      const sid = key.slice(sessionKey('').length);
      const raw = await this.store.get(key);
      const session = raw === null ? null : parseSessionRecord(sid, raw);
      if (session?.uid === uid) sessions.push(session);
    }
    return sessions;
  }

  /** Every sid `owner` minted (a login's session, refused or not). */
  sidsOf(owner: string): string[] {
    return [...this.#names].filter(([, name]) => name === owner).map(([sid]) => sid);
  }

  nameOf(sid: string): string {
    return this.#names.get(sid) ?? `${sid.slice(0, 6)}…`;
  }

  /** Replaces every sid in a trace line by the name of its session. */
  describe(line: string): string {
    return line.replace(/[A-Za-z0-9_-]{43}/g, (sid) => this.nameOf(sid));
  }

  /** Names each sid after whoever minted it (a token is TOKEN_BYTES random bytes; see token.ts). */
  #naming(owner: string): Random {
    const stream = this.#randoms.of(owner);
    return {
      bytes: (length) => {
        const bytes = stream.bytes(length);
        if (length === TOKEN_BYTES) this.#names.set(sidOf(bytes.toString('base64url')), owner);
        return bytes;
      },
      int: (min, max) => stream.int(min, max),
    };
  }
}

export function loginInput(uid: string, flag: DeviceFlag, name: string): IssueInput {
  return {
    uid,
    flag,
    device: { device_id: `device-${name}`, device_name: name, device_model: 'explorer' },
    method: 'password',
    ip: '192.0.2.1',
    userAgent: 'explorer',
  };
}

/** The store as the checker sees it: writes (validate's last-seen touch) are dropped. */
function withoutWrites(store: MemoryKv): Kv {
  return new Proxy(store, {
    get(target, property) {
      if (property === 'set') return async () => false;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

export interface SessionScenario {
  /** Sessions logged in before the race: name → device flag. */
  readonly seed?: Readonly<Record<string, DeviceFlag>>;
  readonly protocols: Readonly<Record<string, Protocol<SessionWorld>>>;
  readonly invariants: readonly Invariant<SessionWorld>[];
  readonly maxRuns: number;
  readonly policies?: DevicePolicies;
  readonly limits?: readonly SessionLimit[];
  /** Runs the IM token protocol too, against the IM server model (world.im), with this timing. */
  readonly im?: ImTiming;
  readonly reduction?: 'sleep-sets';
  /** A mutant of the session core to run instead of the production one (broken variants). */
  readonly sessions?: typeof SessionService;
  /** Sessions write why they ended (ended:<sid>), and the world records who ended each. */
  readonly tombstones?: boolean;
  /** Flags whose session token is the IM token (compat.octo); their policy must be exclusive. */
  readonly sessionTokenFlags?: readonly DeviceFlag[];
}

/** Explores a race of session protocols, each run from a fresh world holding the seeded sessions. */
export function exploreSessions(scenario: SessionScenario): Promise<Exploration> {
  return explore({
    setup: async () => {
      const world = await SessionWorld.create(scenario.policies, scenario.im ?? null, scenario.sessions, scenario.limits, scenario.sessionTokenFlags, scenario.tombstones);
      for (const [name, flag] of Object.entries(scenario.seed ?? {})) await world.seed(name, flag);
      return { world, store: world.store };
    },
    protocols: scenario.protocols,
    invariants: scenario.invariants,
    maxRuns: scenario.maxRuns,
    describe: (world, line) => world.describe(line),
    ...(scenario.reduction === undefined ? {} : { reduction: scenario.reduction }),
  });
}
