/**
 * The group slot of a session limit (docs/design.md §3.2, invariant 7): `user:{uid}:limit:<flags>`
 * holds the sessions that may be live in the group, oldest first, at most `max` of them, and after
 * them the sessions pushed off that have not been ended yet: `<sid>:<flag> …|<sid>:<flag> …`.
 *
 * It generalises the exclusive device slot (device-slot.ts) from one holder to `max`: every write is
 * a compare-and-set against the value read (SET NX when there was none), so the slot's writes put
 * the concurrent logins of a group in one order, and every session of the group that outlives its
 * login is a member. Nothing decides by reading the index, whose entries land in no order (the
 * multi cap's "older evicted by newer" can keep a login that indexed late beside a newer one).
 *
 * A member counts until its record is gone: a record is written once, before its login joins, and
 * never again, so a missing record is an ended session whose release has not landed yet (or never
 * will: the store failed between the two), and a login that needs the seat drops it. Whoever ends a
 * session releases it from the slot (service.ts #end), by compare-and-set, so a newer write survives.
 */
import type { Kv } from '../../ports/kv.ts';
import { busy } from '../errors.ts';
import { isDeviceFlag, type DeviceFlag } from './policy.ts';

export interface SlotMember {
  readonly sid: string;
  readonly flag: DeviceFlag;
}

export interface SlotState {
  /** Oldest first. */
  readonly members: readonly SlotMember[];
  /** Pushed off by a login that has not yet ended them (it failed half-way, or is still ending them). */
  readonly owed: readonly SlotMember[];
}

/**
 * Writes of one slot a login tries before it gives up with 503 (`upstream_unavailable`, Retry-After 1)
 * and is undone. Each failed write means another login or an ending of the same group wrote in between,
 * so this many in a row only happens under a burst of logins to one account; giving up is safe, since
 * the login never joined the slot (or is ended, which releases it).
 */
export const MAX_SLOT_WRITES = 16;

export interface LimitSlotDeps {
  readonly kv: Kv;
  readonly ttlMs: number;
  /**
   * The group's sessions when the slot does not exist yet (the limit is new, or the slot was emptied):
   * the live index entries of its flags but the joining session's, oldest first. Sessions made
   * before the limit was configured count from the first login after it.
   */
  seed(): Promise<SlotMember[]>;
  /** Whether each of these sessions still has its record. */
  live(sids: readonly string[]): Promise<boolean[]>;
}

export type JoinOutcome =
  /**
   * `owed`: sessions pushed off (evict_oldest) or still owed by an earlier login; the joiner ends
   * them. Also the answer, with nothing owed and nothing written, when the joining session turned
   * out to be ended already (pushed off by a concurrent login): its login then answers a token
   * that no longer validates, as a login displaced from the exclusive slot does.
   */
  | { readonly joined: true; readonly owed: readonly SlotMember[] }
  /** reject_new: `max` live members already; nothing was written. */
  | { readonly joined: false };

/**
 * Joins `self` to the slot. With fewer than `max` others it just joins; otherwise members whose record
 * is gone are dropped, and if `max` live ones remain, `evict_oldest` pushes the oldest off (they are
 * owed an end) and `reject_new` writes nothing and answers `{joined: false}`.
 */
export async function joinSlot(
  deps: LimitSlotDeps, key: string, self: SlotMember, max: number, onExceed: 'evict_oldest' | 'reject_new',
): Promise<JoinOutcome> {
  const { kv, ttlMs } = deps;
  for (let attempt = 0; attempt < MAX_SLOT_WRITES; attempt++) {
    const raw = await kv.get(key);
    const state = raw === null ? { members: await deps.seed(), owed: [] } : parseSlot(raw);
    // A concurrent login that seeded the slot from the index counted this session already (and,
    // evicting, may have pushed it off: it is then ended by that login, as the later writer wins).
    const named = (member: SlotMember): boolean => member.sid === self.sid;
    if (state.members.some(named) || state.owed.some(named)) return { joined: true, owed: state.owed.filter((member) => !named(member)) };
    let members = state.members;
    if (members.length + 1 > max) {
      // Read after the slot, so a write based on this value knows both: a login that pushed this
      // one off and ended it wrote the slot first (then this one is named owed above, or, once
      // released, its record is gone here). Without that look, two logins seeding each other could
      // each push the other off, both ended.
      const alive = await deps.live([...members.map((member) => member.sid), self.sid]);
      if (alive.at(-1) !== true) return { joined: true, owed: [] };
      members = members.filter((_, i) => alive[i] === true);
    }
    const excess = members.length + 1 - max;
    if (excess > 0 && onExceed === 'reject_new') return { joined: false };
    const pushed = excess > 0 ? members.slice(0, excess) : [];
    const owed = union(state.owed, pushed);
    const value = encodeSlot({ members: [...members.slice(pushed.length), self], owed });
    const written = raw === null
      ? await kv.set(key, value, { nx: true, ttlMs })
      : await kv.compareAndSet(key, raw, value, { ttlMs });
    if (written) return { joined: true, owed };
  }
  throw busy('the session store', 1);
}

/**
 * Takes `sid` out of the slot (member or owed), by compare-and-set so that a concurrent write
 * survives; an emptied slot is deleted. Gives up after MAX_SLOT_WRITES: the slot then still names a
 * session whose record is gone, which no login counts and the next one that needs the seat drops.
 */
export async function releaseSlot(kv: Kv, key: string, sid: string): Promise<void> {
  for (let attempt = 0; attempt < MAX_SLOT_WRITES; attempt++) {
    const raw = await kv.get(key);
    if (raw === null) return;
    const state = parseSlot(raw);
    const members = state.members.filter((member) => member.sid !== sid);
    const owed = state.owed.filter((member) => member.sid !== sid);
    if (members.length === state.members.length && owed.length === state.owed.length) return;
    const done = members.length === 0 && owed.length === 0
      ? await kv.compareAndDelete(key, raw)
      : await kv.compareAndSet(key, raw, encodeSlot({ members, owed }), { keepTtl: true });
    if (done) return;
  }
}

export function encodeSlot(state: SlotState): string {
  const list = (members: readonly SlotMember[]): string => members.map((member) => `${member.sid}:${member.flag}`).join(' ');
  return `${list(state.members)}|${list(state.owed)}`;
}

/** The slot's value; entries that do not parse are dropped (a sid is base64url, a flag 0–2). */
export function parseSlot(raw: string): SlotState {
  const [members = '', owed = ''] = raw.split('|');
  return { members: parseList(members), owed: parseList(owed) };
}

function parseList(text: string): SlotMember[] {
  return text.split(' ').flatMap((entry) => {
    const [sid = '', flag] = entry.split(':');
    const number = Number(flag);
    return sid !== '' && isDeviceFlag(number) ? [{ sid, flag: number }] : [];
  });
}

function union(a: readonly SlotMember[], b: readonly SlotMember[]): SlotMember[] {
  const seen = new Set(a.map((member) => member.sid));
  return [...a, ...b.filter((member) => !seen.has(member.sid))];
}
