/**
 * The session protocols the explorer races, each one call of the REAL SessionService over the
 * protocol's own scheduled Kv. A protocol records what a client would hold afterwards (a token, or
 * a refusal) in the world, for the invariants to check.
 */
import { setAccountStatus } from '../../src/core/accounts.ts';
import { LatchkeyError } from '../../src/core/errors.ts';
import type { DeviceFlag } from '../../src/core/sessions/policy.ts';
import type { RevokeReason } from '../../src/core/sessions/record.ts';
import type { Protocol } from './scheduler.ts';
import { loginInput, UID, type SessionWorld } from './world.ts';

export type SessionProtocol = Protocol<SessionWorld>;

/**
 * A login of `flag`; a ban seen by its status re-check refuses it with account_disabled, a full
 * reject_new session limit with session_limit.
 */
export function login(flag: DeviceFlag): SessionProtocol {
  return async (kv, world, name) => {
    try {
      world.handOut(name, await world.service(kv, name).issue(loginInput(UID, flag, name)));
    } catch (error) {
      if (error instanceof LatchkeyError && error.code === 'session_limit') {
        world.limited.add(name);
        return;
      }
      if (!(error instanceof LatchkeyError && error.code === 'account_disabled')) throw error;
      world.refused.add(name);
    }
  };
}

/** The holder of session `target` logs out. */
export function logout(target: string): SessionProtocol {
  return async (kv, world, name) => {
    await world.service(kv, name).logout(world.session(target).session);
  };
}

/** Another session of the user revokes session `target` by its sid (the sessions list's id). */
export function revoke(target: string): SessionProtocol {
  return async (kv, world, name) => {
    await world.service(kv, name).revoke(UID, world.session(target).session.sid);
  };
}

/** Session `keep` signs out everywhere else. */
export function revokeOthers(keep: string): SessionProtocol {
  return async (kv, world, name) => {
    await world.service(kv, name).revokeOthers(UID, world.session(keep).session.sid);
  };
}

/**
 * An admin bans the user: the production setAccountStatus (set the status first, then sweep the
 * index, docs/design.md §3.2, 5) over the protocol's scheduled Kv, with the account store in it too.
 * `setStatus` is the production function unless a broken variant passes a mutant of it.
 */
export function ban(setStatus: typeof setAccountStatus = setAccountStatus): SessionProtocol {
  return async (kv, world, name) => {
    await setStatus({ accounts: world.accounts(kv), sessions: world.service(kv, name), clock: world.clock }, UID, 'banned');
  };
}

/** Every session of the user ends (a password reset, an admin's revoke-all), the status untouched. */
export function revokeAll(reason: RevokeReason): SessionProtocol {
  return async (kv, world, name) => {
    await world.service(kv, name).revokeAll(UID, reason);
  };
}
