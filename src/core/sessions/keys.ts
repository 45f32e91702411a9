import type { DeviceFlag } from './policy.ts';

/**
 * Kv key names (docs/design.md §3.1). Keys of one user share the `{uid}` hash tag, so Redis Cluster keeps
 * them in one slot; the session record is keyed by sid alone, since validation only knows the token.
 */
export const sessionKey = (sid: string): string => `sess:${sid}`;
export const lastSeenKey = (sid: string): string => `seen:${sid}`;
/** Why the session ended, for its device (tombstone.ts). */
export const endedKey = (sid: string): string => `ended:${sid}`;
export const userSessionsKey = (uid: string): string => `user:{${uid}}:sessions`;
export const deviceSlotKey = (uid: string, flag: DeviceFlag): string => `user:{${uid}}:slot:${flag}`;
/**
 * The group slot of a session limit (limit-slot.ts), named by its flags in ascending order: a limit
 * keeps its slot when its max or on_exceed changes or the list is reordered (config.ts refuses two
 * limits with the same flags).
 */
export const limitSlotKey = (uid: string, flags: readonly DeviceFlag[]): string =>
  `user:{${uid}}:limit:${[...flags].sort((a, b) => a - b).join(',')}`;
/** The IM token this flag's live sessions share (docs/design.md §3.4); see im-token-value.ts for what it holds. */
export const imTokenKey = (uid: string, flag: DeviceFlag): string => `user:{${uid}}:im:${flag}`;
/** A device_quit owed to the IM server for (uid, flag): attempts and back-off (im-quit-queue.ts). */
export const imQuitJobKey = (uid: string, flag: DeviceFlag): string => `user:{${uid}}:im-quit:${flag}`;
/** Every (uid, flag) with an owed device_quit, so each node's worker can find them. */
export const IM_QUIT_QUEUE_KEY = 'im-quit-queue';
