/**
 * The IM side of a session's life (docs/design.md §3.4). The session core calls it at four named
 * points — a login's IM step, the end of one session, the undoing of a login that never answered,
 * and a sweep of many sessions — and it keeps the flag's shared IM token (im-tokens.ts) and the
 * queue of device_quit calls still owed to an IM server that was down (im-quit-queue.ts) in step.
 * Without an IM bridge every step does nothing (NO_IM).
 */
import type { Clock } from '../../ports/clock.ts';
import type { Kv } from '../../ports/kv.ts';
import type { Random } from '../../ports/random.ts';
import { ImBannedError, ImUnavailableError, type ImBridge } from '../../ports/im-bridge.ts';
import { LatchkeyError, accountDisabled } from '../errors.ts';
import type { DeviceFlag, DevicePolicies } from './policy.ts';
import { ImContentionError, ImTokens, type ImOutcome, type OwnImToken } from './im-tokens.ts';
import { ImQuitQueue, type DrainReport, type ImQuitRetryOptions } from './im-quit-queue.ts';

export interface SessionIm {
  /**
   * The login's IM step, once its session is indexed and its policy applied (a device it replaced
   * or evicted has released the flag's token first): the flag's token, taken by the IM server.
   * Throws what the login answers when the IM server refused or could not be told; the caller then
   * undoes the login. `stillLive` is asked after the token is committed: a revoke or ban that ended
   * the session meanwhile may have released the flag before the commit, so it is released again
   * (whichever of the two looks last sees the other). `own`: the session token itself is pushed
   * (compat.octo's Web and PC, ImTokens.acquire) and answered as the IM token.
   */
  loginStep(uid: string, flag: DeviceFlag, stillLive: () => Promise<boolean>, own?: OwnImToken): Promise<string | null>;
  /** After one session ended: the flag's token is deleted if it was the last, else rotated. */
  sessionEnded(uid: string, flag: DeviceFlag): Promise<ImOutcome | null>;
  /**
   * After a login was undone before it answered: its session never held the token, but while it
   * was indexed another call may have rotated one in for it. A token no live session holds goes.
   */
  loginUndone(uid: string, flag: DeviceFlag): Promise<void>;
  /**
   * After a sweep, one step per flag rather than one per session (N sessions of a flag ending
   * together would rotate its token N times); `every device` quits them all at once (-1).
   */
  sweepEnded(uid: string, flags: readonly DeviceFlag[] | 'every device'): Promise<void>;
  /** The flag's current token (GET /v1/user/im_token). */
  current(uid: string, flag: DeviceFlag): Promise<string | null>;
  /** One pass of the retry queue of owed device_quit calls. */
  drainOwedQuits(): Promise<DrainReport | null>;
  owedQuitCount(): Promise<number>;
  /** Whether the user still owes the IM server a device_quit. */
  owesQuit(uid: string): Promise<boolean | null>;
}

/** Without an IM bridge: no token, nothing owed. */
export const NO_IM: SessionIm = {
  loginStep: async () => null,
  sessionEnded: async () => null,
  loginUndone: async () => {},
  sweepEnded: async () => {},
  current: async () => null,
  drainOwedQuits: async () => null,
  owedQuitCount: async () => 0,
  owesQuit: async () => null,
};

export interface SessionImOptions {
  readonly kv: Kv;
  readonly clock: Clock;
  readonly random: Random;
  readonly policies: DevicePolicies;
  readonly ttlMs: number;
  readonly bridge: ImBridge;
  readonly quitRetry: ImQuitRetryOptions;
  /** Whether a session of this flag is live: read from the session records, not the index. */
  readonly hasLiveSession: (uid: string, flag: DeviceFlag) => Promise<boolean>;
}

export function createSessionIm(options: SessionImOptions): SessionIm {
  const owedQuits = new ImQuitQueue(options.kv, options.clock, options.quitRetry);
  const tokens = new ImTokens({ ...options, owedQuits });
  return {
    async loginStep(uid, flag, stillLive, own) {
      let token: string;
      try {
        token = await tokens.acquire(uid, flag, own);
      } catch (error) {
        throw imLoginError(error);
      }
      if (!(await stillLive())) await tokens.releaseCommitted(uid, flag, token);
      return own === undefined ? token : own.push;
    },
    sessionEnded: (uid, flag) => tokens.release(uid, flag),
    loginUndone: async (uid, flag) => {
      await tokens.releaseUnheld(uid, flag);
    },
    async sweepEnded(uid, flags) {
      if (flags === 'every device') {
        await tokens.releaseAll(uid);
        return;
      }
      await Promise.all([...new Set(flags)].map((flag) => tokens.release(uid, flag)));
    },
    current: (uid, flag) => tokens.current(uid, flag),
    drainOwedQuits: () => owedQuits.drain((uid, flag) => tokens.settleOwed(uid, flag)),
    owedQuitCount: () => owedQuits.size(),
    owesQuit: (uid) => tokens.owes(uid),
  };
}

/** What a login answers when the IM server refused it or could not be told. */
function imLoginError(error: unknown): unknown {
  if (error instanceof ImBannedError) return accountDisabled();
  if (error instanceof ImUnavailableError || error instanceof ImContentionError) {
    return new LatchkeyError('upstream_unavailable', 'the IM server is unavailable; try again shortly');
  }
  return error;
}
