import type { DeviceFlag } from './policy.ts';

/**
 * Kv key names (DESIGN §3.1). Keys of one user share the `{uid}` hash tag, so Redis Cluster keeps
 * them in one slot; the session record is keyed by sid alone, since validation only knows the token.
 */
export const sessionKey = (sid: string): string => `sess:${sid}`;
export const lastSeenKey = (sid: string): string => `seen:${sid}`;
export const userSessionsKey = (uid: string): string => `user:{${uid}}:sessions`;
export const deviceSlotKey = (uid: string, flag: DeviceFlag): string => `user:{${uid}}:slot:${flag}`;
