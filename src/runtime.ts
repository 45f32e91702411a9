/**
 * Builds the running parts of latchkey from the config: stores, the session core, guards and
 * flows' dependencies. Everything with a connection is closed by `close()`.
 */
import type { Kv } from './ports/kv.ts';
import type { AccountRepo } from './ports/accounts.ts';
import { systemClock, type Clock } from './ports/clock.ts';
import { cryptoRandom, type Random } from './ports/random.ts';
import type { Config } from './config.ts';
import { SqliteKv } from './adapters/sqlite/sqlite-kv.ts';
import { RedisKv } from './adapters/redis/redis-kv.ts';
import { openAccountStore } from './adapters/db/open.ts';
import { SessionService } from './core/sessions/service.ts';
import { createPasswordHasher } from './core/passwords.ts';
import { LoginThrottle, RateLimiter, type Delay } from './core/guards.ts';
import { AuditTrail, type AuditLogger } from './ops/audit.ts';
import { createMetrics } from './ops/metrics.ts';
import { ProfileCache } from './core/profile-cache.ts';
import type { Sender, SenderLogger } from './ports/sender.ts';
import { openSender } from './adapters/open-sender.ts';

export interface RuntimeOverrides {
  readonly clock?: Clock;
  readonly random?: Random;
  readonly kv?: Kv;
  readonly throttleDelay?: Delay;
  readonly sender?: Sender;
}

export async function openKv(url: string, clock: Clock, keyPrefix = ''): Promise<Kv> {
  if (url.startsWith('sqlite:')) return new SqliteKv({ path: url.slice('sqlite:'.length), clock });
  return RedisKv.connect(url, { keyPrefix });
}

export async function createRuntime(config: Config, log: AuditLogger & SenderLogger, overrides: RuntimeOverrides = {}) {
  const clock = overrides.clock ?? systemClock;
  const random = overrides.random ?? cryptoRandom;
  const kv = overrides.kv ?? (await openKv(config.store, clock, config.storePrefix));
  let accountStore: Awaited<ReturnType<typeof openAccountStore>>;
  try {
    accountStore = await openAccountStore(config.db);
  } catch (error) {
    await kv.close();
    throw error;
  }
  const accounts: AccountRepo = accountStore.repo;
  const metrics = createMetrics();
  const sender = overrides.sender ?? openSender(config, clock, log);
  const sessions = new SessionService({
    kv,
    clock,
    random,
    policies: config.devicePolicies,
    ttlMs: config.sessionTtlSeconds * 1000,
    accountStatus: async (uid) => (await accounts.findByUid(uid))?.status ?? null,
    onEnded: (_session, reason) => {
      metrics.revoked.inc({ reason });
    },
  });
  return {
    config,
    clock,
    random,
    kv,
    accounts,
    sessions,
    profiles: new ProfileCache((uid) => accounts.findByUid(uid), clock),
    metrics,
    hasher: createPasswordHasher(config.password),
    limiter: new RateLimiter(kv),
    throttle: new LoginThrottle(kv, config.loginThrottle, overrides.throttleDelay),
    audit: new AuditTrail(accounts, clock, log),
    sender,
    async close(): Promise<void> {
      await Promise.allSettled([kv.close(), accountStore.close(), sender.close()]);
    },
  };
}

export type Runtime = Awaited<ReturnType<typeof createRuntime>>;
