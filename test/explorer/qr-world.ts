/**
 * The QR login (src/flows/qr/) under the explorer: a login request in the store, the app sessions
 * that may scan it, and the production scan, answer and exchange functions run as protocols over
 * their own scheduled Kv — the QR record's transitions, the account reads (kv-accounts.ts) and the
 * session the exchange issues are all scheduling points. Built on the session world, whose checker
 * validates tokens. A password reset (src/flows/code/password-reset.ts) and a password login
 * (src/flows/password/password-flow.ts) can race them too, the same way.
 */
import { NO_EVENTS } from '../../src/ports/events.ts';
import type { CodeFlowDeps } from '../../src/flows/code/deps.ts';
import { CodeStore } from '../../src/flows/code/code-store.ts';
import { resetPassword } from '../../src/flows/code/password-reset.ts';
import type { QrFlowDeps } from '../../src/flows/qr/deps.ts';
import { answerLoginRequest, scanLoginRequest } from '../../src/flows/qr/approval.ts';
import { exchangeAuthCode } from '../../src/flows/qr/exchange.ts';
import { passwordLogin } from '../../src/flows/password/password-flow.ts';
import type { LoginThrottle } from '../../src/core/guards.ts';
import { createLoginRequest } from '../../src/flows/qr/request.ts';
import { deriveAuthCode } from '../../src/flows/qr/secrets.ts';
import { readQrRecord } from '../../src/flows/qr/transition.ts';
import type { PasswordHasher } from '../../src/ports/password-hasher.ts';
import type { Destination } from '../../src/core/destinations.ts';
import { LatchkeyError } from '../../src/core/errors.ts';
import type { Session } from '../../src/core/sessions/record.ts';
import { AuditTrail } from '../../src/ops/audit.ts';
import { createMetrics, type Metrics } from '../../src/ops/metrics.ts';
import type { Kv } from '../../src/ports/kv.ts';
import { explore, type Exploration, type Invariant, type Protocol } from './scheduler.ts';
import { OWNER_EMAIL, onlyModelled, passwordKey, statusKey } from './kv-accounts.ts';
import { APP, loginInput, SessionWorld, UID } from './world.ts';

/** Another account, whose app scans the request too (someone who photographed the screen). */
export const STRANGER_UID = 'u2';
const CONTEXT = { ip: '192.0.2.1', userAgent: 'explorer' };
const QR_CONFIG = { qr: { requestTtlSeconds: 120, pollTimeoutSeconds: 25, authCodeTtlSeconds: 60, maxPollsPerIp: 4, maxPollsPerRequest: 4 } };
export const RESET_DESTINATION: Destination = { channel: 'email', to: OWNER_EMAIL };
const NEW_PASSWORD = 'a new passphrase nobody guesses 7';

/** One registry for the whole run: the flows count logins in it, no check reads it. */
let metrics: Metrics | null = null;
const sharedMetrics = (): Metrics => (metrics ??= createMetrics());

/** `hash:<password>`, so OLD_PASSWORD_HASH (world.ts) is the hash of OLD_PASSWORD. */
const hasher = onlyModelled<PasswordHasher>({
  hash: async (password: string) => `hash:${password}`,
  verify: async (hash: string | null, password: string) => ({ ok: hash === `hash:${password}`, needsRehash: false }),
}, 'password hasher');
export const OLD_PASSWORD = 'old';
/** The login throttle counts guesses; none of these races is about it. */
const throttle = onlyModelled<LoginThrottle>({ reserve: async () => {}, succeeded: async () => {}, released: async () => {} }, 'login throttle');

export class QrWorld {
  readonly sessions: SessionWorld;
  readonly uuid: string;
  readonly pollSecret: string;
  /** The reset code mailed to the owner before the race, if the scenario sent one. */
  resetCode: string | null = null;
  /** Protocol → the scanner session whose approval it got answered `authed`. */
  readonly approvedBy = new Map<string, string>();
  /** Protocol → the token its exchange was answered with. */
  readonly exchanged = new Map<string, string>();
  /** Protocol → the token its password login was answered with. */
  readonly loggedIn = new Map<string, string>();

  constructor(sessions: SessionWorld, uuid: string, pollSecret: string) {
    this.sessions = sessions;
    this.uuid = uuid;
    this.pollSecret = pollSecret;
  }

  deps(kv: Kv, owner: string): QrFlowDeps {
    return qrDeps(this.sessions, kv, owner);
  }

  /** The auth code the poller collects once the request is approved (null before). */
  async authCode(): Promise<string | null> {
    const record = await readQrRecord(this.sessions.store, this.uuid);
    if (record === null || record.code_nonce === null) return null;
    return deriveAuthCode(this.pollSecret, this.uuid, record.code_nonce);
  }

  scanner(name: string): Session {
    return this.sessions.session(name).session;
  }
}

/** What the QR flows use, over `kv`, with randomness of `owner`'s own. */
function qrDeps(sessions: SessionWorld, kv: Kv, owner: string): QrFlowDeps {
  const accounts = sessions.accounts(kv);
  return {
    kv,
    events: NO_EVENTS,
    clock: sessions.clock,
    random: sessions.random(owner),
    config: QR_CONFIG,
    sessions: sessions.service(kv, owner),
    accounts,
    audit: new AuditTrail(accounts, sessions.clock, { warn: () => {} }),
    metrics: sharedMetrics(),
    // Accounts of the explorer have no second factor.
    secondStep: { challenge: async () => null },
  };
}

export type QrProtocol = Protocol<QrWorld>;
export type QrInvariant = Invariant<QrWorld>;

/**
 * Once the reset returned and all settled, no session of the owner validates: the app session that
 * approved, the one its approval was exchanged for, one a login with the old password was given.
 */
export const resetEndsEverything = (protocol: string): QrInvariant => async ({ world, final, returned }) => {
  if (!final || !returned(protocol)) return null;
  if (await world.sessions.validates('phone')) return 'reset: the approving app session still validates';
  for (const [name, token] of [...world.exchanged, ...world.loggedIn]) {
    if (await world.sessions.validatesToken(token)) return `reset: the session ${name} was given still validates`;
  }
  return null;
};

/** Refusals the flows answer with (a lost race, a lapsed approval): the protocol ends, nothing is handed out. */
function refused(error: unknown): boolean {
  return error instanceof LatchkeyError && ['conflict', 'forbidden', 'expired', 'not_found', 'account_disabled'].includes(error.code);
}

export type ApprovalModule = Pick<typeof import('../../src/flows/qr/approval.ts'), 'scanLoginRequest' | 'answerLoginRequest'>;

/** The app session `scanner` scans the request and approves it (the production functions, or a mutant's). */
export function scanAndApprove(scanner: string, approval: ApprovalModule = { scanLoginRequest, answerLoginRequest }): QrProtocol {
  return async (kv, world, name) => {
    const deps = world.deps(kv, name);
    try {
      await approval.scanLoginRequest(deps, world.scanner(scanner), world.uuid, CONTEXT);
      await approval.answerLoginRequest(deps, world.scanner(scanner), world.uuid, true, CONTEXT);
      world.approvedBy.set(name, scanner);
    } catch (error) {
      if (!refused(error)) throw error;
    }
  };
}

/** The requester trades the auth code (collected before the race) for a session (the production exchange, or a mutant). */
export function exchange(exchangeCode: typeof exchangeAuthCode = exchangeAuthCode): QrProtocol {
  return async (kv, world, name) => {
    const authCode = await world.authCode();
    if (authCode === null) throw new Error('exchange: the request was not approved before the race');
    try {
      const response = await exchangeCode(world.deps(kv, name), { uuid: world.uuid, authCode, pollSecret: world.pollSecret }, CONTEXT);
      if ('token' in response) world.exchanged.set(name, response.token);
    } catch (error) {
      if (!refused(error)) throw error;
    }
  };
}

export type PasswordLogin = typeof passwordLogin;

/** Someone who knows the password before the reset logs in with it on the Web (the production passwordLogin, or a mutant). */
export function loginWithOldPassword(login: PasswordLogin = passwordLogin): QrProtocol {
  return async (kv, world, name) => {
    // Accounts of the explorer have no second factor.
    const deps = { ...world.deps(kv, name), hasher, throttle, secondStep: { challenge: async () => null } };
    const context = { ...CONTEXT, flag: 1 as const, device: { device_id: `device-${name}`, device_name: name, device_model: 'explorer' } };
    try {
      const answer = await login(deps, OWNER_EMAIL, OLD_PASSWORD, context);
      if ('token' in answer) world.loggedIn.set(name, answer.token);
    } catch (error) {
      if (!(error instanceof LatchkeyError && error.code === 'invalid_credentials')) throw error;
    }
  };
}

/** The owner resets the password with the code mailed before the race: the production resetPassword. */
export function reset(reset: typeof resetPassword = resetPassword): QrProtocol {
  return async (kv, world, name) => {
    const { resetCode } = world;
    if (resetCode === null) throw new Error('reset: no code was sent before the race');
    const { sessions } = world;
    const deps = world.deps(kv, name);
    const codeDeps = onlyModelled<CodeFlowDeps>({
      accounts: deps.accounts,
      sessions: deps.sessions,
      audit: deps.audit,
      clock: deps.clock,
      hasher,
      codes: new CodeStore(kv, sessions.clock, sessions.random(name)),
    }, 'code flow deps');
    await reset(codeDeps, RESET_DESTINATION, resetCode, NEW_PASSWORD, CONTEXT);
  };
}

export interface QrScenario {
  /** Approve the request before the race (by the owner's app session `phone`). */
  readonly approved: boolean;
  /** Mail the owner a reset code before the race. */
  readonly resetCode?: boolean;
  readonly protocols: Readonly<Record<string, QrProtocol>>;
  readonly invariants: readonly QrInvariant[];
  readonly maxRuns: number;
}

/**
 * Each run: the owner's app session `phone`, a stranger's app session `stranger`, and a Web
 * login request waiting to be scanned (or already approved by `phone`).
 */
export function exploreQr(scenario: QrScenario): Promise<Exploration> {
  return explore({
    setup: async () => {
      const sessions = await SessionWorld.create();
      // Each protocol's random stream exists before the race, so which protocol draws first never
      // decides who gets which stream (and a swap of independent calls changes no value).
      for (const name of Object.keys(scenario.protocols)) sessions.random(name);
      await sessions.seed('phone', APP);
      await sessions.store.set(statusKey(STRANGER_UID), 'active');
      await sessions.store.set(passwordKey(STRANGER_UID), 'hash:stranger');
      sessions.handedOut.set('stranger', await sessions.service(sessions.store, 'stranger').issue(loginInput(STRANGER_UID, APP, 'stranger')));
      const requester = { flag: 1 as const, device: { device_id: 'browser', device_name: 'browser', device_model: 'explorer' }, ...CONTEXT, user_agent: 'explorer' };
      const created = await createLoginRequest(qrDeps(sessions, sessions.store, 'requester'), requester);
      const world = new QrWorld(sessions, created.uuid, created.poll_secret);
      if (scenario.approved) {
        const deps = world.deps(sessions.store, 'setup');
        await scanLoginRequest(deps, world.scanner('phone'), world.uuid, CONTEXT);
        await answerLoginRequest(deps, world.scanner('phone'), world.uuid, true, CONTEXT);
      }
      if (scenario.resetCode === true) {
        const codes = new CodeStore(sessions.store, sessions.clock, sessions.random('mailer'));
        world.resetCode = (await codes.issue('reset_password', RESET_DESTINATION)).code;
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

