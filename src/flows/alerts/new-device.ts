/**
 * The new-device alert (docs/security.md §5a): when `alerts.new_device` is on and
 * a login brings a device the account has never used, the account's verified email gets "New
 * sign-in on <device> from <ip> at <time>; not you? <link>". The link carries a one-time secret
 * (32 random bytes) good for 24 hours, kept in the Kv only as its SHA-256 (the key) with the uid
 * (the value), and taken with GETDEL, so of two submissions exactly one ends the sessions.
 *
 * Sending never slows or fails a login: the login calls `newDevice` and goes on; the mail is sent
 * afterwards and a failure is logged. The first device of an account (a sign-up, a first login)
 * is not "new": there is nothing it is new next to, so no alert.
 */
import { createHash } from 'node:crypto';
import type { User, AccountRepo } from '../../ports/accounts.ts';
import type { Clock } from '../../ports/clock.ts';
import type { Kv } from '../../ports/kv.ts';
import type { Random } from '../../ports/random.ts';
import type { Sender, SenderLogger } from '../../ports/sender.ts';
import type { SessionService } from '../../core/sessions/service.ts';
import { invalidRequest, LatchkeyError } from '../../core/errors.ts';
import type { AuditContext, AuditTrail } from '../../ops/audit.ts';
import type { DeviceInfo } from '../../core/sessions/record.ts';

/** What the alert tells of the login (a LoginContext fits). */
export interface AlertLogin extends AuditContext {
  readonly device: DeviceInfo;
}

export const ALERT_TOKEN_TTL_MS = 24 * 60 * 60 * 1000;
/** 32 bytes, base64url: 43 characters. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;
/** Where the link opens: a console page that asks before it acts (mail scanners fetch links). */
export const SIGN_OUT_EVERYWHERE_PAGE = '/signout-everywhere';

export interface NewDeviceAlertDeps {
  readonly kv: Kv;
  readonly sender: Sender;
  readonly random: Random;
  readonly clock: Clock;
  readonly accounts: AccountRepo;
  readonly sessions: SessionService;
  readonly audit: AuditTrail;
  readonly log: SenderLogger;
  readonly enabled: boolean;
  /** The origin links point at; without it the mail goes out without a link. */
  readonly publicUrl: string | undefined;
}

const tokenKey = (token: string): string => `alert:signout:${createHash('sha256').update(token).digest('base64url')}`;

export class NewDeviceAlerts {
  readonly #deps: NewDeviceAlertDeps;
  readonly #pending = new Set<Promise<void>>();

  constructor(deps: NewDeviceAlertDeps) {
    this.#deps = deps;
  }

  /** Whether alerts can go out at all: switched on, and a sender that delivers email notices. */
  get active(): boolean {
    const { enabled, sender } = this.#deps;
    return enabled && sender.notify !== undefined && sender.channels.includes('email');
  }

  /** Called by a login that brought a device new to the account; returns at once. */
  newDevice(user: User, context: AlertLogin): void {
    if (!this.active) return;
    const job: Promise<void> = this.#send(user, context)
      .catch((error: unknown) => this.#deps.log.warn({ err: error, uid: user.uid }, 'new-device alert not sent'))
      .finally(() => this.#pending.delete(job));
    this.#pending.add(job);
  }

  /** Resolves when every alert under way has been sent or given up (shutdown, tests). */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  async #send(user: User, context: AlertLogin): Promise<void> {
    const { kv, sender, random, clock, accounts, audit, log, publicUrl } = this.#deps;
    // Never to an address the account only claims: that could be anybody's.
    if (user.email === null || !user.emailVerified || sender.notify === undefined) return;
    if ((await accounts.listDevices(user.uid)).length <= 1) return;
    let link: string | null = null;
    if (publicUrl !== undefined) {
      const token = random.bytes(32).toString('base64url');
      await kv.set(tokenKey(token), user.uid, { ttlMs: ALERT_TOKEN_TTL_MS });
      link = `${publicUrl}${SIGN_OUT_EVERYWHERE_PAGE}?t=${token}`;
    }
    const device = [context.device.device_name, context.device.device_model].filter((part) => part !== '').join(' / ') || 'an unnamed device';
    const at = new Date(clock.now()).toISOString().slice(0, 16).replace('T', ' ');
    const text = `New sign-in on ${device} from ${context.ip} at ${at} UTC; not you? ` +
      (link === null
        ? 'Sign in, choose "Sign out everywhere else" and change your password.\n'
        : `Sign out everywhere: ${link}\n\nThe link works once, for 24 hours. Then sign in again and change your password.\n`);
    await sender.notify({ channel: 'email', to: user.email.toLowerCase(), masked: maskEmail(user.email), kind: 'new_device', subject: 'New sign-in to your account', text });
    await audit.record({ type: 'new_device_alert', uid: user.uid, sid: null, result: 'ok', reason: link === null ? 'no_link' : 'link', context });
    log.info({ uid: user.uid, to: maskEmail(user.email) }, 'new-device alert sent');
  }
}

function maskEmail(email: string): string {
  const at = email.indexOf('@');
  return at <= 0 ? '***' : `${email.slice(0, Math.min(2, at))}***${email.slice(at)}`;
}

export interface SignOutEverywhereDeps {
  readonly kv: Kv;
  readonly sessions: SessionService;
  readonly audit: AuditTrail;
}

/**
 * POST from the link's page: the secret is the authorisation. Malformed → 400; unknown, used or
 * older than 24 h → 410 `expired` (which of these, an outsider does not learn). Returns how many
 * sessions ended.
 */
export async function signOutEverywhere(deps: SignOutEverywhereDeps, token: string, context: AuditContext): Promise<number> {
  if (!TOKEN_PATTERN.test(token)) throw invalidRequest('token', 'token must be the link\'s 43-character secret');
  const uid = await deps.kv.getdel(tokenKey(token));
  if (uid === null) throw new LatchkeyError('expired', 'this link has expired or was already used');
  // `revoked`: to a device it reads "signed out from another of your devices" (docs/api.md §3).
  const revoked = await deps.sessions.revokeAll(uid, 'revoked');
  await deps.audit.record({ type: 'revoke', uid, sid: null, result: 'ok', reason: `alert:all:${revoked}`, context });
  return revoked;
}
