/**
 * The IM server (WuKongIM) as the explorer sees it: one stored token per device flag, and which
 * tokens could hold an open connection.
 *
 * Timing 'any': each call is ONE scheduling point of the protocol that makes it (through
 * ScheduledKv.schedule), so the explorer also tries every order in which the IM server could
 * receive the calls of concurrent requests — the races a real network allows, which no ordering of
 * Kv calls alone shows (an update that left before a logout and lands after it).
 * Timing 'with-commit': a call takes effect in the same step as the protocol's next store call
 * (the conditional write that commits what it told the IM server), just before it. Other requests
 * can still act between the read that decided the call and its landing, so an update landing
 * after a concurrent logout's device_quit is still tried; far fewer orders remain, for races of
 * three protocols (and the explorer's reduction stays sound: that step claims the IM server too).
 */
import type { ImBridge, ImDeviceFlag, ImTokenUpdate } from '../../src/ports/im-bridge.ts';
import type { Kv } from '../../src/ports/kv.ts';
import { ScheduledKv, type Access, type SameStepWork } from './scheduled-kv.ts';

const FLAGS: readonly ImDeviceFlag[] = [0, 1, 2];

export type ImTiming = 'any' | 'with-commit';

interface WaitingCalls {
  readonly calls: { readonly label: string; readonly land: () => void }[];
  landed: boolean;
}

export class ImServerModel {
  readonly timing: ImTiming;

  constructor(timing: ImTiming) {
    this.timing = timing;
  }

  /** The token each flag connects with now (null: none, or cleared by a device_quit). */
  readonly stored = new Map<ImDeviceFlag, string | null>();
  /**
   * Tokens a client may hold a connection with: stored since the flag was last kicked (device_quit,
   * or a Master update, which kicks before it stores), each with the protocol that stored it last.
   */
  readonly connectable = new Map<ImDeviceFlag, Map<string, string>>();
  /** Every call, in the order the server received them. */
  readonly log: string[] = [];
  /** Timing 'with-commit': calls made but not landed yet, per caller. */
  readonly #waiting = new Map<string, WaitingCalls>();

  updateToken(caller: string, update: ImTokenUpdate): void {
    this.log.push(`${caller}: update ${update.flag} ${update.token.slice(0, 8)} ${update.level}`);
    const connectable = this.#connectable(update.flag);
    if (update.level === 'master') connectable.clear();
    connectable.set(update.token, caller);
    this.stored.set(update.flag, update.token);
  }

  deviceQuit(caller: string, flag: ImDeviceFlag | -1): void {
    this.log.push(`${caller}: quit ${flag}`);
    for (const each of flag === -1 ? FLAGS : [flag]) {
      this.#connectable(each).clear();
      this.stored.set(each, null);
    }
  }

  /** The bridge one protocol uses: when `kv` is scheduled, so are its calls (see the timings). */
  bridgeFor(kv: Kv, caller: string): ImBridge {
    if (kv instanceof ScheduledKv && this.timing === 'with-commit') kv.attachToEachCall(() => this.#sameStepWork(caller));
    const send = async (label: string, footprint: readonly Access[], land: () => void): Promise<void> => {
      if (!(kv instanceof ScheduledKv)) return land();
      if (this.timing === 'any') return kv.schedule(label, footprint, async () => land());
      const waiting = this.#waiting.get(caller) ?? { calls: [], landed: false };
      waiting.calls.push({ label, land });
      this.#waiting.set(caller, waiting);
    };
    return {
      updateToken: (update) => send(`im update ${update.flag} ${update.token.slice(0, 8)} ${update.level}`, [imResource(update.flag)], () => {
        this.updateToken(caller, update);
      }),
      deviceQuit: (_uid, flag) => send(`im quit ${flag}`, flag === -1 ? FLAGS.map(imResource) : [imResource(flag)], () => {
        this.deviceQuit(caller, flag);
      }),
    };
  }

  /** Calls made but not landed (timing 'with-commit'): a protocol must not end with some. */
  waiting(): number {
    return [...this.#waiting.values()].reduce((sum, waiting) => sum + waiting.calls.length, 0);
  }

  /**
   * Every store call the caller makes while IM calls wait carries them (a step of several calls in
   * flight at once, such as a ban's per-flag commits): the first of those to run lands them.
   */
  #sameStepWork(caller: string): SameStepWork | null {
    const waiting = this.#waiting.get(caller);
    if (waiting === undefined) return null;
    return {
      label: waiting.calls.map((call) => call.label).join(', '),
      footprint: FLAGS.map(imResource),
      run: () => {
        if (waiting.landed) return;
        waiting.landed = true;
        if (this.#waiting.get(caller) === waiting) this.#waiting.delete(caller);
        for (const call of waiting.calls) call.land();
      },
    };
  }

  #connectable(flag: ImDeviceFlag): Map<string, string> {
    let tokens = this.connectable.get(flag);
    if (tokens === undefined) {
      tokens = new Map();
      this.connectable.set(flag, tokens);
    }
    return tokens;
  }
}

function imResource(flag: ImDeviceFlag): Access {
  return { resource: `im-server:${flag}`, write: true };
}
