/**
 * ImBridge: the IM server that clients keep their message connection to (WuKongIM, docs/design.md §3.4).
 * It keeps ONE token per (uid, device flag); a client connects with it. latchkey tells it which
 * token is valid, and tells it to drop a user's devices. Adapters: wukongim (HTTP). With `im.type:
 * none` there is no bridge at all and latchkey keeps no IM tokens.
 */

/** WuKongIM's device flags (APP 0, Web 1, PC 2); -1 in a device_quit means every flag. */
export type ImDeviceFlag = 0 | 1 | 2;

/**
 * master: WuKongIM kicks the connections already open on this (uid, flag) — one phone at a time.
 * slave: the stored token is replaced and open connections are left alone.
 */
export type ImDeviceLevel = 'master' | 'slave';

export interface ImTokenUpdate {
  readonly uid: string;
  readonly token: string;
  readonly flag: ImDeviceFlag;
  readonly level: ImDeviceLevel;
}

export interface ImBridge {
  /**
   * `POST /user/token`: from now on `token` is the one that connects (uid, flag). Throws ImBannedError
   * when the IM server has banned the user, ImUnavailableError when it cannot be told.
   */
  updateToken(update: ImTokenUpdate): Promise<void>;
  /**
   * `POST /user/device_quit`: the stored token of (uid, flag) is cleared and its connections are
   * kicked; flag -1 does it for every flag. Throws ImUnavailableError when it cannot be told.
   */
  deviceQuit(uid: string, flag: ImDeviceFlag | -1): Promise<void>;
}

/**
 * The IM server did not confirm the call: unreachable, timed out, or answered anything but success.
 * The message is safe to log (built from status codes only, never from tokens).
 */
export class ImUnavailableError extends Error {
  override readonly name = 'ImUnavailableError';
}

/** The IM server refuses the user (WuKongIM answers status 19: the user's person channel is banned). */
export class ImBannedError extends Error {
  override readonly name = 'ImBannedError';
}
