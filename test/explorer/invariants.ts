/**
 * The invariants of DESIGN §3.2 as explorer checks. Each returns what is wrong, or null. They read
 * the store directly and validate tokens through an unscheduled SessionService (SessionWorld).
 */
import { deviceSlotKey, sessionKey, userSessionsKey } from '../../src/core/sessions/keys.ts';
import { DEVICE_FLAGS } from '../../src/core/sessions/policy.ts';
import type { Invariant } from './scheduler.ts';
import { UID, type SessionWorld } from './world.ts';

export type SessionInvariant = Invariant<SessionWorld>;

/** 1. Final logout: from the moment `protocol` returned, none of `targets` validates again. */
export function finalLogout(protocol: string, targets: readonly string[]): SessionInvariant {
  return async ({ world, returned }) => {
    if (!returned(protocol)) return null;
    for (const target of targets) {
      if (await world.validates(target)) return `final logout: ${target} validates after ${protocol} returned`;
    }
    return null;
  };
}

/** 2. No collateral: once all is settled, these sessions still validate, indexed, holding their slot. */
export function noCollateral(survivors: readonly string[]): SessionInvariant {
  return async ({ world, final }) => {
    if (!final) return null;
    for (const name of survivors) {
      if (!world.handedOut.has(name)) return `no collateral: ${name} never got a token`;
      const { session } = world.session(name);
      if (!(await world.validates(name))) return `no collateral: ${name} no longer validates`;
      if ((await world.store.hget(userSessionsKey(UID), session.sid)) === null) {
        return `no collateral: ${name} lost its index entry`;
      }
      const slot = deviceSlotKey(UID, session.device_flag);
      if (world.policies[session.device_flag].mode === 'exclusive' && (await world.store.get(slot)) !== session.sid) {
        return `no collateral: ${name} lost its device slot`;
      }
    }
    return null;
  };
}

/** 3. Exclusive means one: of these concurrent logins, exactly one session validates, holding the slot. */
export function exclusiveMeansOne(logins: readonly string[]): SessionInvariant {
  return async ({ world, final }) => {
    if (!final) return null;
    const valid: string[] = [];
    for (const name of logins) {
      if (world.handedOut.has(name) && (await world.validates(name))) valid.push(name);
    }
    const [winner] = valid;
    if (valid.length !== 1 || winner === undefined) {
      return `exclusive means one: ${valid.length} of ${logins.join(', ')} validate`;
    }
    const { session } = world.session(winner);
    const holder = await world.store.get(deviceSlotKey(UID, session.device_flag));
    return holder === session.sid ? null : `exclusive means one: ${winner} won but the slot holds ${holder}`;
  };
}

/** 5. Ban is total: from the moment `protocol` returned, no token of the user validates; at the end no record is left. */
export function banIsTotal(protocol: string): SessionInvariant {
  return async ({ world, returned, final }) => {
    if (!returned(protocol)) return null;
    for (const [name, { session }] of world.handedOut) {
      if (session.uid === UID && (await world.validates(name))) return `ban is total: ${name} validates after the ban`;
    }
    const left = final ? await world.liveSessions(UID) : [];
    return left.length === 0 ? null : `ban is total: session ${left.map((s) => s.sid).join(', ')} is left`;
  };
}

/**
 * The settled store is coherent: every index entry points at a live session, every live session is
 * indexed (or a ban's sweep would miss it), and an exclusive flag has at most one live session,
 * which holds the slot (or the next login of that flag would not replace it).
 */
export const storeConsistent: SessionInvariant = async ({ world, final }) => {
  if (!final) return null;
  const alive = async (sid: string) => (await world.store.get(sessionKey(sid))) !== null;
  const index = await world.store.hgetall(userSessionsKey(UID));
  for (const sid of Object.keys(index)) {
    if (!(await alive(sid))) return `store: the index lists ${sid}, which has ended`;
  }
  const live = await world.liveSessions(UID);
  const unindexed = live.find((session) => index[session.sid] === undefined);
  if (unindexed !== undefined) return `store: ${unindexed.sid} is live but not in the index`;
  for (const flag of DEVICE_FLAGS) {
    if (world.policies[flag].mode !== 'exclusive') continue;
    const holder = await world.store.get(deviceSlotKey(UID, flag));
    const ofFlag = live.filter((session) => session.device_flag === flag);
    if (ofFlag.length > 1) return `store: ${ofFlag.map((s) => s.sid).join(' and ')} are both live on exclusive flag ${flag}`;
    const [only] = ofFlag;
    if (only !== undefined && holder !== only.sid) return `store: ${only.sid} is live but slot ${flag} holds ${holder}`;
  }
  return null;
};

/** The settled store has no device slot naming a session that has ended: whoever ends a session releases its slot. */
export const slotsReleased: SessionInvariant = async ({ world, final }) => {
  if (!final) return null;
  for (const flag of DEVICE_FLAGS) {
    const holder = await world.store.get(deviceSlotKey(UID, flag));
    if (holder !== null && (await world.store.get(sessionKey(holder))) === null) {
      return `slot released: slot ${flag} still holds ${holder}, which has ended`;
    }
  }
  return null;
};
