/**
 * The slot of an exclusive device flag (APP by default): `user:{uid}:slot:<flag>` names the one
 * session that may hold the flag (docs/design.md §3.2, invariants 2 and 3). Whoever displaces a sid
 * from the slot ends it: of concurrent logins only the last writer of the slot survives, and no
 * login ends another by reading the index.
 *
 * The slot holds its sid followed by the sids it displaced and has not ended yet
 * (`<sid> <owed>…`): a login that fails (store or IM down) after taking the slot but before ending
 * what it displaced leaves them named there, and the next login of the flag ends them. Without that,
 * the displaced session outlived every later login beside the new one.
 */
import type { Kv } from '../../ports/kv.ts';
import { deviceSlotKey, sessionKey } from './keys.ts';
import type { Session } from './record.ts';
import type { DeviceFlag } from './policy.ts';

/** Takes the slot for a new session, ending every session it displaces. */
export async function takeDeviceSlot(kv: Kv, session: Session, ttlMs: number, endDisplaced: (sid: string) => Promise<unknown>): Promise<void> {
  const slot = deviceSlotKey(session.uid, session.device_flag);
  const { previous, taken } = await pushOntoSlot(kv, slot, session.sid, ttlMs);
  const displaced = [...new Set(previous?.split(' ') ?? [])].filter((sid) => sid !== '' && sid !== session.sid);
  if (displaced.length > 0) {
    await Promise.all(displaced.map(endDisplaced));
    // All ended: the slot names this session alone, unless a newer login took it meanwhile (it
    // carries the list on and ends them again, harmlessly).
    await kv.compareAndSet(slot, taken, session.sid, { keepTtl: true });
  }
  // A revoke or ban that ended this session between joining the index and taking the slot could
  // not release a slot that did not name it yet: release it here (compare-and-delete, so a newer
  // login's slot survives).
  if ((await kv.get(sessionKey(session.sid))) === null) {
    await kv.compareAndDelete(slot, session.sid);
  }
}

/** Releases the slot if it still names this session; a newer login's slot is left alone. */
export async function releaseDeviceSlot(kv: Kv, uid: string, flag: DeviceFlag, sid: string): Promise<void> {
  await kv.compareAndDelete(deviceSlotKey(uid, flag), sid);
}

/**
 * Writes `<sid> <what the slot held>` over the slot by compare-and-set, retrying until no other
 * login wrote it in between; returns what it held (null: empty) and what was written.
 */
async function pushOntoSlot(kv: Kv, slot: string, sid: string, ttlMs: number): Promise<{ previous: string | null; taken: string }> {
  for (;;) {
    const previous = await kv.get(slot);
    const taken = previous === null ? sid : `${sid} ${previous}`;
    const written = previous === null
      ? await kv.set(slot, taken, { nx: true, ttlMs })
      : await kv.compareAndSet(slot, previous, taken, { ttlMs });
    if (written) return { previous, taken };
  }
}
