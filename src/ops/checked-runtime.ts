/**
 * Opens the runtime only once both stores have answered and agree on the deployment, for `serve`
 * and for the CLI. A node once logged "listening" on an unreachable Redis and only showed it in a
 * stack trace of a later warning; now start-up ends with one line and exit 1 (or, with --wait,
 * tries again with one log line per attempt).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/config.ts';
import type { Kysely } from 'kysely';
import { createRuntime, openKv, type Runtime, type RuntimeOverrides } from '../runtime/runtime.ts';
import { systemClock } from '../ports/clock.ts';
import type { Kv } from '../ports/kv.ts';
import type { Database } from '../adapters/db/schema.ts';
import { StoreUnavailableError } from '../ports/errors.ts';
import type { AuditLogger } from './audit.ts';
import type { SenderLogger } from '../ports/sender.ts';
import { describeStore, maskUrl, verifyDeployment, type PairingMode } from './deployment-id.ts';

/** A store that did not answer at start: one line, naming it. */
export class StoreUnreachableAtStartError extends Error {
  override readonly name = 'StoreUnreachableAtStartError';
}

export interface CheckedRuntime {
  readonly runtime: Runtime;
  readonly deploymentId: string;
}

export interface WaitOptions {
  /** Keep trying while a store does not answer, instead of giving up at the first attempt. */
  readonly wait: boolean;
  readonly retryDelayMs?: number;
  readonly onRetry?: (attempt: number, reason: string) => void;
}

const RETRY_DELAY_MS = 2000;

export async function openCheckedRuntime(
  config: Config,
  log: AuditLogger & SenderLogger,
  mode: PairingMode,
  overrides: RuntimeOverrides = {},
  waiting: WaitOptions = { wait: false },
): Promise<CheckedRuntime> {
  const runtime = await retrying(waiting, () => openAnswering(config, log, overrides));
  try {
    const deploymentId = await verifyDeployment(runtime.kv, runtime.accountDb, mode, config);
    return { runtime, deploymentId };
  } catch (error) {
    await runtime.close();
    throw error instanceof StoreUnavailableError ? new StoreUnreachableAtStartError(`a store stopped answering at start: ${error.message}`) : error;
  }
}

/**
 * The store is asked first, before the runtime is built (worker threads, senders, SSO clients):
 * a refusal then comes in the time it takes to connect, not to start everything and stop it again.
 */
async function openAnswering(config: Config, log: AuditLogger & SenderLogger, overrides: RuntimeOverrides): Promise<Runtime> {
  const kv = overrides.kv ?? (await openKv(config.store, overrides.clock ?? systemClock, config.storePrefix, config.storeTlsCa, config.storeMinReplicas));
  try {
    await requireAnswer(kv, config);
  } catch (error) {
    if (overrides.kv === undefined) await kv.close();
    throw error;
  }
  // createRuntime closes the Kv itself when the account database fails.
  return createRuntime(config, log, { ...overrides, kv }).catch((error: unknown) => {
    throw unreachableDatabase(error, config);
  });
}

async function retrying<T>(waiting: WaitOptions, open: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await open();
    } catch (error) {
      if (!waiting.wait || !(error instanceof StoreUnreachableAtStartError)) throw error;
      waiting.onRetry?.(attempt, error.message);
      await sleep(waiting.retryDelayMs ?? RETRY_DELAY_MS);
    }
  }
}

/** The Kv is open and answering by now: a store that fails inside createRuntime is the account database. */
function unreachableDatabase(error: unknown, config: Config): unknown {
  if (!(error instanceof StoreUnavailableError)) return error;
  const cause = error.cause instanceof Error ? error.cause.message : error.message;
  return new StoreUnreachableAtStartError(`the account database ${maskUrl(config.db)} does not answer (${cause})`);
}

/** A Redis Kv is created even while Redis is down (it recovers by itself once serving); at start that is a refusal. */
async function requireAnswer(kv: Kv, config: Config): Promise<void> {
  if (!(await kv.ping())) throw new StoreUnreachableAtStartError(`the session store ${describeStore(config)} does not answer`);
}

/**
 * For the commands that open only the account database (audit tail, import): the session store is
 * opened just to compare deployment ids, so they too refuse the wrong pair.
 */
export async function requireSameDeployment(config: Config, db: Kysely<Database>): Promise<void> {
  const kv = await openKv(config.store, systemClock, config.storePrefix, config.storeTlsCa, config.storeMinReplicas);
  try {
    await requireAnswer(kv, config);
    await verifyDeployment(kv, db, 'compare', config);
  } finally {
    await kv.close();
  }
}
