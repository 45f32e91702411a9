/**
 * Bounds the device rows a user leaves behind. A row is written at every login that names a
 * device_id, and before this nothing ever deleted one: a client that sends a fresh device_id per
 * login (or a script) grew the table without end — 40 rows for 10 live sessions, and `GET
 * /v1/user/devices` listing them all.
 *
 * Rule: a device with a live session is always kept (it is where the user is signed in, and DELETE
 * /v1/user/devices/:id must find it). Of the others, the newest DEVICE_HISTORY per user are kept as
 * "recently signed in from" for at most DEVICE_IDLE_DAYS after their last login; the rest go. So a
 * user has at most (live sessions + DEVICE_HISTORY) rows, whatever they send. Live sessions are read
 * from the session store at pruning time, so a device row is never taken from under a session.
 */
import type { AccountRepo, Device } from '../ports/accounts.ts';
import type { Clock } from '../ports/clock.ts';
import type { Kv } from '../ports/kv.ts';
import type { SessionService } from '../core/sessions/service.ts';
import { runSoonAndPeriodically, type PeriodicLogger, type PeriodicTask } from './periodic.ts';

export const DEVICE_HISTORY = 10;
export const DEVICE_IDLE_DAYS = 30;
const PRUNE_INTERVAL_MS = 3600_000;
const PAGE = 500;
export const DEVICE_PRUNE_LOCK_KEY = 'device-prune-lock';

export interface DevicePruneDeps {
  readonly accounts: AccountRepo;
  readonly sessions: SessionService;
  readonly kv: Kv;
  readonly clock: Clock;
}

/**
 * One pass over every user with too many or too old device rows; returns how many rows went, or
 * null when another node holds this interval's lock. Idempotent, so a lost lock costs only work.
 */
export async function pruneDevices(deps: DevicePruneDeps, lockMs = PRUNE_INTERVAL_MS): Promise<number | null> {
  if (!(await deps.kv.set(DEVICE_PRUNE_LOCK_KEY, String(deps.clock.now()), { nx: true, ttlMs: lockMs }))) return null;
  const cutoff = deps.clock.now() - DEVICE_IDLE_DAYS * 86_400_000;
  let pruned = 0;
  let after = '';
  for (;;) {
    const owners = await deps.accounts.listDeviceOwnersToPrune(cutoff, DEVICE_HISTORY, after, PAGE);
    for (const uid of owners) pruned += await pruneUser(deps, uid, cutoff);
    const last = owners.at(-1);
    if (last === undefined || owners.length < PAGE) return pruned;
    after = last;
  }
}

/**
 * A login issues its session, then writes its device row. One that starts after the session list
 * was read writes a last-login time after `listedAt` (less a margin for clocks of other nodes), and
 * the delete spares rows touched since, so a device is never pruned from under a new session.
 */
const CLOCK_MARGIN_MS = 60_000;

async function pruneUser(deps: DevicePruneDeps, uid: string, cutoff: number): Promise<number> {
  const listedAt = deps.clock.now();
  const [devices, sessions] = await Promise.all([deps.accounts.listDevices(uid), deps.sessions.list(uid)]);
  const live = new Set(sessions.map((session) => session.device_id));
  return deps.accounts.deleteDevices(uid, idleBeyondHistory(devices, live, cutoff), listedAt - CLOCK_MARGIN_MS);
}

/** `devices` newest first (as listDevices returns them). */
function idleBeyondHistory(devices: readonly Device[], live: ReadonlySet<string>, cutoff: number): string[] {
  const idle = devices.filter((device) => !live.has(device.deviceId));
  return idle.filter((device, rank) => rank >= DEVICE_HISTORY || device.lastLoginAt < cutoff).map((device) => device.deviceId);
}

/** Runs pruneDevices shortly after start and hourly after, like the audit pruner. */
export function startDevicePruner(deps: DevicePruneDeps, log: PeriodicLogger): PeriodicTask {
  return runSoonAndPeriodically('device-prune', 1000, PRUNE_INTERVAL_MS, async () => {
    await pruneDevices(deps);
  }, log);
}
