/**
 * Builds the running parts of latchkey from the config: stores, the session core, guards and
 * flows' dependencies. Everything with a connection is closed by `close()`.
 */
import type { Kv } from '../ports/kv.ts';
import type { AccountRepo } from '../ports/accounts.ts';
import { systemClock, type Clock } from '../ports/clock.ts';
import { cryptoRandom, type Random } from '../ports/random.ts';
import type { Config } from '../config/config.ts';
import { SqliteKv } from '../adapters/sqlite/sqlite-kv.ts';
import { RedisKv } from '../adapters/redis/redis-kv.ts';
import { openAccountStore } from '../adapters/db/open.ts';
import { KyselyIdentityRepo } from '../adapters/db/identity-repo.ts';
import { SessionService } from '../core/sessions/service.ts';
import type { DeviceFlag, DevicePolicies } from '../core/sessions/policy.ts';
import { OctoMirror } from '../core/sessions/octo-mirror.ts';
import { createPasswordHasher } from './password-hasher.ts';
import { LoginThrottle, RateLimiter, type Delay } from '../core/guards.ts';
import { AuditTrail, type AuditLogger } from '../ops/audit.ts';
import { createMetrics } from '../ops/metrics.ts';
import { ProfileCache } from '../core/profile-cache.ts';
import type { Sender, SenderLogger } from '../ports/sender.ts';
import { openSender } from '../adapters/open-sender.ts';
import { createOidc } from './oidc.ts';
import { CodeStore } from '../flows/code/code-store.ts';
import { ResendCooldown } from '../flows/code/resend-cooldown.ts';
import { SendTiming } from '../flows/code/send-timing.ts';
import { PollSlots } from '../flows/qr/poll-slots.ts';
import { KyselySecondFactorRepo } from '../adapters/db/second-factor-repo.ts';
import { KyselyPasskeyRepo } from '../adapters/db/passkey-repo.ts';
import { TokenCipher } from '../flows/oidc/token-cipher.ts';
import type { SecondFactorDeps } from '../flows/mfa/second-factors.ts';
import { MfaTickets } from '../flows/mfa/ticket.ts';
import { secondStepGate } from '../flows/mfa/second-step.ts';
import type { ImBridge } from '../ports/im-bridge.ts';
import { openImBridge } from '../adapters/wukongim/open-im-bridge.ts';
import { NewDeviceAlerts } from '../flows/alerts/new-device.ts';
import { KyselyOutbox, OutboxRows } from '../adapters/db/outbox.ts';
import { NO_EVENTS, type EventSink } from '../ports/events.ts';
import { tombstone } from '../core/sessions/tombstone.ts';

export interface RuntimeOverrides {
  readonly clock?: Clock;
  readonly random?: Random;
  readonly kv?: Kv;
  readonly throttleDelay?: Delay;
  readonly sender?: Sender;
  /** Replaces the configured IM bridge (`im.type`); null runs without one. */
  readonly imBridge?: ImBridge | null;
  /** Replaces octo-server's Redis of the token mirror (`compat.octo_redis`). */
  readonly octoRedis?: Kv;
}

export async function openKv(url: string, clock: Clock, keyPrefix = '', tlsCa?: string, minReplicas = 0): Promise<Kv> {
  if (url.startsWith('sqlite:')) return new SqliteKv({ path: url.slice('sqlite:'.length), clock });
  return RedisKv.connect(url, { keyPrefix, minReplicas, ...(tlsCa !== undefined && { tlsCa }) });
}

export async function createRuntime(config: Config, log: AuditLogger & SenderLogger, overrides: RuntimeOverrides = {}) {
  const clock = overrides.clock ?? systemClock;
  const random = overrides.random ?? cryptoRandom;
  const kv = overrides.kv ?? (await openKv(config.store, clock, config.storePrefix, config.storeTlsCa, config.storeMinReplicas));
  let accountStore: Awaited<ReturnType<typeof openAccountStore>>;
  try {
    accountStore = await openAccountStore(config.db);
  } catch (error) {
    await kv.close();
    throw error;
  }
  const accounts: AccountRepo = accountStore.repo;
  const metrics = createMetrics();
  // Webhooks (docs/design.md §3.6): with none configured nothing is written and no worker runs.
  const outboxRows = new OutboxRows(config.webhooks, clock, random);
  const outbox = config.webhooks.length === 0 ? null : new KyselyOutbox(accountStore.db, outboxRows);
  if (outbox !== null) accountStore.repo.useOutbox(outboxRows, () => outbox.notifyWritten());
  const events: EventSink = outbox ?? NO_EVENTS;
  const sender = overrides.sender ?? openSender(config, clock, log);
  const imBridge = overrides.imBridge !== undefined ? overrides.imBridge : openImBridge(config.im);
  // octo-server's Redis, for the token mirror (docs/octo-compat.md §3). Down at start is no reason
  // not to start: logins answer 503 and removals are queued until it answers.
  const octoRedis = config.compat.octoRedis;
  const mirrorKv = octoRedis === null ? null : (overrides.octoRedis ?? (await openKv(octoRedis.url, clock)));
  const octoMirror = octoRedis === null || mirrorKv === null ? null : new OctoMirror({
    kv, mirror: mirrorKv, clock, tokenPrefix: octoRedis.tokenPrefix, sidPrefix: octoRedis.sidPrefix,
    tokenTtlMs: octoRedis.tokenTtlSeconds * 1000, retryIntervalMs: octoRedis.retryIntervalMs, retryMaxIntervalMs: octoRedis.retryMaxIntervalMs,
  });
  // compat.octo with an IM server: Web and PC connect to it with their session token, one session
  // each (docs/octo-compat.md §2, 8), so that a logout still ends that one token at the IM server.
  const sessionTokenFlags: readonly DeviceFlag[] = config.compat.octo && imBridge !== null ? [1, 2] : [];
  const policies: DevicePolicies = sessionTokenFlags.length === 0 ? config.devicePolicies : { ...config.devicePolicies, 1: { mode: 'exclusive' }, 2: { mode: 'exclusive' } };
  if (sessionTokenFlags.some((flag) => config.devicePolicies[flag].mode !== 'exclusive')) {
    log.warn({ device_policies: { web: 'exclusive', pc: 'exclusive' } }, 'compat.octo with an IM server: one Web and one PC session per user (device_policies.web and .pc are overridden)');
  }
  const sessions = new SessionService({
    kv,
    clock,
    random,
    policies,
    limits: config.sessionLimits,
    ttlMs: config.sessionTtlSeconds * 1000,
    idleTimeoutMs: config.sessionIdleTimeoutSeconds * 1000,
    endedRetentionMs: config.endedRetentionSeconds * 1000,
    accountStatus: async (uid) => (await accounts.findByUid(uid))?.status ?? null,
    onEnded: (session, reason) => {
      metrics.revoked.inc({ reason });
      // Ended by another login (a new phone, a device past the cap), not by a request of its own.
      if (reason === 'replaced' || reason === 'cap') {
        void audit.record({ type: 'revoke', uid: session.uid, sid: session.sid, result: 'ok', reason });
      }
      // Its token leaves octo-server's Redis, however it ended; what fails is queued and retried
      // (octo-mirror.ts), and a logout checks it again before it answers.
      const mirrored = octoMirror?.ended(session).catch((error: unknown) => {
        log.warn({ err: error, sid: session.sid }, 'octo token mirror: removal not queued');
      });
      // Only the call whose GETDEL ended the session gets here, so the event is written once. A login
      // undone before it answered (`aborted`) ends a session nobody was told of: no event.
      const ended = outbox === null ? null : tombstone(reason, clock.now());
      const told = ended === null ? Promise.resolve() : events.emit([{
        type: 'session.ended',
        data: { uid: session.uid, sid: session.sid, device_flag: session.device_flag, device_id: session.device_id, reason: ended.reason },
      }]).catch((error: unknown) => {
        // The session is over either way; the lost event is logged and counted.
        metrics.webhookLost.inc({ type: 'session.ended' });
        log.warn({ err: error, sid: session.sid }, 'session.ended event not written');
      });
      // An SSO session's links (sealed ID token, IdP session index) end with it, however it ended.
      return Promise.all([told, oidc.sessionEnded(session), mirrored]).then(() => undefined);
    },
    ...(imBridge === null ? {} : { im: { bridge: imBridge, quitRetry: config.im.quitRetry, sessionTokenFlags } }),
  });
  const audit = new AuditTrail(accounts, clock, log);
  const hasher = createPasswordHasher(config.password);
  const alerts = new NewDeviceAlerts({
    kv, sender, random, clock, accounts, sessions, audit, log, enabled: config.alerts.newDevice, publicUrl: config.publicUrl,
  });
  const oidc = createOidc(config, { kv, clock, random, sessions, accounts, events, audit, metrics, alerts, identities: new KyselyIdentityRepo(accountStore.db, outbox === null ? null : { rows: outboxRows, written: () => outbox.notifyWritten() }), registry: metrics.registry, octoMirror }, log);
  const throttle = new LoginThrottle(kv, { ...config.loginThrottle, ipv6Prefix: config.rateLimits.ipv6Prefix }, overrides.throttleDelay);
  const secondFactors: SecondFactorDeps = {
    factors: new KyselySecondFactorRepo(accountStore.db),
    cipher: config.mfa.secretKeys.length === 0 ? null : new TokenCipher(config.mfa.secretKeys, random),
    clock,
    random,
    audit,
    issuer: config.mfa.issuer,
  };
  const mfaTickets = new MfaTickets(kv, random);
  return {
    config,
    clock,
    random,
    kv,
    accounts,
    /** Events for webhooks (NO_EVENTS without any); `outbox` is what the delivery worker reads. */
    events,
    outbox,
    /** The account database itself, for what the repo does not cover (the deployment id, ops/deployment-id.ts). */
    accountDb: accountStore.db,
    sessions,
    /** Whether logins hand out IM tokens (an IM bridge is configured, docs/design.md §3.4). */
    imEnabled: imBridge !== null,
    /** Flags whose session token is itself the IM token (compat.octo with an IM server). */
    imSessionTokenFlags: sessionTokenFlags,
    profiles: new ProfileCache((uid) => accounts.findByUid(uid), clock),
    metrics,
    hasher,
    limiter: new RateLimiter(kv, config.rateLimits.ipv6Prefix),
    throttle,
    /** TOTP and recovery codes (flows/mfa/), and the tickets of logins waiting for their second step. */
    secondFactors,
    mfaTickets,
    /** Passkeys (flows/mfa/passkeys.ts); the relying party comes from config.passkeys. */
    passkeys: { repo: new KyselyPasskeyRepo(accountStore.db) },
    secondStep: secondStepGate({ sessions, accounts, audit, metrics, clock, secondFactors, mfaTickets, throttle }),
    audit,
    sender,
    /** One-time codes: the store, the resend cooldown and the fixed answer time of code/send. */
    codes: new CodeStore(kv, clock, random),
    codeCooldown: new ResendCooldown(kv, random),
    codeSendTiming: new SendTiming(clock, config.codeLogin.sendAnswerMs),
    /** Held QR polls are this node's sockets, so they are counted on this node. */
    qrPollSlots: new PollSlots({ perIp: config.qr.maxPollsPerIp, perRequest: config.qr.maxPollsPerRequest }),
    oidc,
    /** The new-device alert (src/flows/alerts/): startSession calls it when a device is new to the account. */
    alerts,
    /** The token mirror into octo-server's Redis (compat.octo_redis), or null. */
    octoMirror,
    async close(): Promise<void> {
      oidc.close();
      await alerts.settled();
      await Promise.allSettled([kv.close(), accountStore.close(), sender.close(), hasher.close(), ...(mirrorKv === null || overrides.octoRedis !== undefined ? [] : [mirrorKv.close()])]);
    },
  };
}

export type Runtime = Awaited<ReturnType<typeof createRuntime>>;
