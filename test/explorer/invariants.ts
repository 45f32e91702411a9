/**
 * The invariants of docs/design.md §3.2 as explorer checks. Each returns what is wrong, or null. They read
 * the store directly and validate tokens through an unscheduled SessionService (SessionWorld).
 */
import { deviceSlotKey, endedKey, imTokenKey, limitSlotKey, sessionKey, userSessionsKey } from '../../src/core/sessions/keys.ts';
import { parseTombstone, tombstone } from '../../src/core/sessions/tombstone.ts';
import { parseSlot } from '../../src/core/sessions/limit-slot.ts';
import { DEVICE_FLAGS, type DeviceFlag, type SessionLimit } from '../../src/core/sessions/policy.ts';
import { parseImTokenValue } from '../../src/core/sessions/im-token-value.ts';
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

/**
 * Under a cap, concurrent logins never evict each other: of these, at least one still validates
 * once all settled. (The world's clock stands still, so logins tie on created_at and the sid breaks
 * the tie: the one ordered newer evicts the other, or both survive, cap + 1 until the next login —
 * but never does each evict the other, which would sign the user out twice.)
 */
export function capKeepsOne(logins: readonly string[]): SessionInvariant {
  return async ({ world, final }) => {
    if (!final) return null;
    for (const name of logins) if (world.handedOut.has(name) && (await world.validates(name))) return null;
    return `cap: none of ${logins.join(', ')} validates`;
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

/** The live IM token of a flag in the store, or null (none, or owed). */
async function liveImToken(world: SessionWorld, flag: DeviceFlag): Promise<string | null> {
  const value = parseImTokenValue(await world.store.get(imTokenKey(UID, flag)));
  return value?.state === 'live' ? value.token : null;
}

const shortToken = (token: string): string => token.slice(0, 8);

interface ImHistory {
  /** Each flag's live token at the last look. */
  readonly live: Map<DeviceFlag, string | null>;
  /** Every token that was ever live in the store (handed out, or about to be). */
  readonly published: Set<string>;
  /** Tokens that were live and left the store (deleted, rotated away, marked owed). */
  readonly ended: Set<string>;
}

const imHistories = new WeakMap<SessionWorld, ImHistory>();

/**
 * Follows the IM token keys step by step (every IM invariant calls it after every step; looking
 * twice at one state changes nothing), so it sees every token that is published and every one
 * that ends. Returns a violation of invariant 4 in the store, or the history.
 */
async function observeImTokens(world: SessionWorld): Promise<ImHistory | string> {
  let history = imHistories.get(world);
  if (history === undefined) {
    history = { live: new Map(), published: new Set(), ended: new Set() };
    imHistories.set(world, history);
  }
  for (const flag of DEVICE_FLAGS) {
    const live = await liveImToken(world, flag);
    const before = history.live.get(flag) ?? null;
    if (before !== null && before !== live) history.ended.add(before);
    if (live !== null && history.ended.has(live)) return `IM token ${shortToken(live)} of flag ${flag} was written again after it ended`;
    if (live !== null) history.published.add(live);
    history.live.set(flag, live);
  }
  return history;
}

/**
 * 4. No resurrection of IM tokens: a token that left `user:{uid}:im:<flag>` (deleted, rotated away
 * or marked owed) is never written into it again; and at the IM server it stays connectable no
 * longer than the request that wrote it back there is running — that request must kick it (a
 * device_quit) before it answers.
 */
export function imTokensNeverResurrected(): SessionInvariant {
  return async ({ world, returned }) => {
    const history = await observeImTokens(world);
    if (typeof history === 'string') return history;
    for (const [flag, tokens] of world.im?.connectable ?? []) {
      for (const [token, writer] of tokens) {
        if (history.ended.has(token) && (world.seeded.has(writer) || returned(writer))) {
          return `IM token ${shortToken(token)} of flag ${flag} ended, yet still connects at the IM server after ${writer} returned`;
        }
      }
    }
    return null;
  };
}

/**
 * 1. for IM: once everything settled after `protocol` ended `target`, the IM token target was handed
 * is neither live in the store nor able to connect at the IM server. (While the race runs, the
 * step-by-step guarantee is imTokensNeverResurrected; a logout can also return before the login
 * that replaced its session has pushed the replacement.)
 */
export function imTokenEndsWith(protocol: string, target: string): SessionInvariant {
  return async ({ world, returned, final }) => {
    if (!final || !returned(protocol)) return null;
    const { session, imToken } = world.session(target);
    if (imToken === undefined) return `IM: ${target} was handed no IM token`;
    if ((await liveImToken(world, session.device_flag)) === imToken) return `IM: ${target}'s IM token ${shortToken(imToken)} is still live`;
    const connectable = world.im?.connectable.get(session.device_flag)?.has(imToken) ?? false;
    return connectable ? `IM: ${target}'s IM token ${shortToken(imToken)} still connects at the IM server` : null;
  };
}

/**
 * Once all is settled, the store and the IM server agree: a flag has a live token exactly when it
 * has a live session, and the IM server holds that token. A flag without one holds none there —
 * or a fresh token a step pushed and then failed to commit, which nobody was ever handed.
 */
export const imSettled: SessionInvariant = async ({ world, final }) => {
  if (!final || world.im === null) return null;
  const history = await observeImTokens(world);
  if (typeof history === 'string') return history;
  if (world.im.waiting() > 0) return 'IM settled: a protocol returned with IM calls that never landed';
  const live = await world.liveSessions(UID);
  for (const flag of DEVICE_FLAGS) {
    const token = await liveImToken(world, flag);
    const sessions = live.filter((session) => session.device_flag === flag).length;
    const stored = world.im.stored.get(flag) ?? null;
    if (sessions > 0 && token === null) return `IM settled: flag ${flag} has ${sessions} live session(s) but no live IM token`;
    if (sessions === 0 && token !== null) return `IM settled: flag ${flag} has no live session but IM token ${shortToken(token)} is live`;
    const strayUnpublished = token === null && stored !== null && !history.published.has(stored);
    if (stored !== token && !strayUnpublished) {
      return `IM settled: the IM server holds ${stored === null ? 'no token' : shortToken(stored)} for flag ${flag}, the store ${token === null ? 'none' : shortToken(token)}`;
    }
  }
  return null;
};

/**
 * 7. A session limit holds: once all is settled, at most `max` sessions of the limit's flags are
 * live, and each of them is a member of the group slot (else the next login would not count it).
 */
export function withinSessionLimit(limit: SessionLimit): SessionInvariant {
  return async ({ world, final }) => {
    if (!final) return null;
    const live = (await world.liveSessions(UID)).filter((session) => limit.flags.includes(session.device_flag));
    if (live.length > limit.max) {
      return `session limit: ${live.length} sessions of flags ${limit.flags.join(',')} are live (${live.map((s) => s.sid).join(', ')}), max ${limit.max}`;
    }
    const raw = await world.store.get(limitSlotKey(UID, limit.flags));
    const members = new Set(raw === null ? [] : parseSlot(raw).members.map((member) => member.sid));
    const outside = live.find((session) => !members.has(session.sid));
    return outside === undefined ? null : `session limit: ${outside.sid} is live but not in the group slot (${raw})`;
  };
}

/**
 * 7. A login a reject_new limit refused left nothing behind: no key, hash field or value of the
 * store names its session (record, tombstone, index entry, slots, last-seen).
 */
export const refusedLeftNothing: SessionInvariant = async ({ world, final }) => {
  if (!final) return null;
  for (const name of world.limited) {
    for (const sid of world.sidsOf(name)) {
      for (const key of world.store.keys()) {
        if (key.includes(sid)) return `refused login: ${name} left ${key}`;
        const hash = await world.store.hgetall(key).catch(() => ({}));
        if (Object.keys(hash).some((field) => field === sid)) return `refused login: ${name} left its field in ${key}`;
        const value = await world.store.get(key).catch(() => null);
        if (value?.includes(sid) === true) return `refused login: ${name} is still named in ${key}`;
      }
    }
  }
  return null;
};

/**
 * Why a session ended is told by the call that ended it (docs/design.md §3.1): once all is
 * settled, a live session's `ended:<sid>` still holds its pre-written expiry, and an ended one holds
 * the reason of the one call whose GETDEL ended it (recorded by onEnded), never a racing loser's.
 */
export const tombstonesSayWhy: SessionInvariant = async ({ world, final }) => {
  if (!final) return null;
  for (const key of world.store.keys().filter((k) => k.startsWith(endedKey('')))) {
    const sid = key.slice(endedKey('').length);
    const told = parseTombstone(await world.store.get(key));
    const live = (await world.store.get(sessionKey(sid))) !== null;
    const ending = world.endings.get(sid);
    const expected = live || ending === undefined ? 'expired' : tombstone(ending, 0)?.reason ?? 'expired';
    if (told?.reason !== expected) {
      return `why it ended: ${sid} (${live ? 'live' : `ended by ${ending ?? 'nobody'}`}) says ${told?.reason ?? 'nothing'}, not ${expected}`;
    }
    if ((expected === 'replaced' || expected === 'cap') && told.by === undefined) return `why it ended: ${sid} was ${expected} but says by whom`;
  }
  return null;
};
