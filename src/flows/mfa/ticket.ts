/**
 * The MFA ticket (docs/design.md §4, second factors): what a password or code login of an account
 * with a second factor answers instead of a token. It names the account and the login waiting for
 * its second step (device, flag, method), lives 5 minutes, allows 5 tries of a code, and is taken
 * by GETDEL, so of parallel verifications exactly one turns it into a session. Stored under the
 * SHA-256 of the ticket, never the ticket itself.
 */
import { createHash } from 'node:crypto';
import type { Kv } from '../../ports/kv.ts';
import type { Random } from '../../ports/random.ts';
import type { DeviceFlag } from '../../core/sessions/policy.ts';
import type { DeviceInfo, LoginMethod } from '../../core/sessions/record.ts';

export const TICKET_TTL_MS = 5 * 60_000;
export const TICKET_MAX_WRONG = 5;

export interface PendingLogin {
  readonly uid: string;
  readonly method: LoginMethod;
  readonly flag: DeviceFlag;
  readonly device: DeviceInfo;
  /** The password as the first step saw it (a fingerprint, never the hash): a change voids the ticket. */
  readonly password_stamp: string | null;
}

/** A fingerprint of the stored password hash, so a ticket outlives no password change or reset. */
export function passwordStamp(passwordHash: string | null): string | null {
  return passwordHash === null ? null : createHash('sha256').update(`mfa-ticket\0${passwordHash}`).digest('base64url');
}

const ticketKey = (ticket: string): string => `mfa:ticket:${createHash('sha256').update(ticket).digest('base64url')}`;
const triesKey = (ticket: string): string => `${ticketKey(ticket)}:tries`;

export class MfaTickets {
  readonly #kv: Kv;
  readonly #random: Random;

  constructor(kv: Kv, random: Random) {
    this.#kv = kv;
    this.#random = random;
  }

  async issue(pending: PendingLogin): Promise<string> {
    const ticket = this.#random.bytes(32).toString('base64url');
    await this.#kv.set(ticketKey(ticket), JSON.stringify(pending), { ttlMs: TICKET_TTL_MS });
    return ticket;
  }

  /** The login a live ticket waits for, or null (unknown, expired, used or guessed to death). */
  async peek(ticket: string): Promise<PendingLogin | null> {
    return parse(await this.#kv.get(ticketKey(ticket)));
  }

  /**
   * Reserves one try of a code before it is checked (INCR: parallel guesses each take a number, so
   * no more than 5 are ever checked). False, and the ticket is gone, once the tries are used up.
   * The try that succeeds takes the ticket, so only wrong codes ever use the tries up.
   */
  async reserveTry(ticket: string): Promise<boolean> {
    const { value } = await this.#kv.incr(triesKey(ticket), TICKET_TTL_MS);
    if (value <= TICKET_MAX_WRONG) return true;
    await this.#kv.del(ticketKey(ticket));
    return false;
  }

  /** Takes the ticket: only one caller gets the login back. */
  async take(ticket: string): Promise<PendingLogin | null> {
    return parse(await this.#kv.getdel(ticketKey(ticket)));
  }
}

function parse(raw: string | null): PendingLogin | null {
  if (raw === null) return null;
  try {
    return JSON.parse(raw) as PendingLogin;
  } catch {
    return null;
  }
}
