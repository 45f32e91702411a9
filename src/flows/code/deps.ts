import type { StartSessionDeps } from '../start-session.ts';
import type { SecondStepGate } from '../mfa/second-step.ts';
import type { AccountRepo, Address, User } from '../../ports/accounts.ts';
import type { Clock } from '../../ports/clock.ts';
import type { EventSink } from '../../ports/events.ts';
import type { Random } from '../../ports/random.ts';
import type { CodeChannel, Sender, SenderLogger } from '../../ports/sender.ts';
import type { RateLimit } from '../../config/config.ts';
import type { SessionService } from '../../core/sessions/service.ts';
import type { OctoMirror } from '../../core/sessions/octo-mirror.ts';
import type { PasswordHasher } from '../../ports/password-hasher.ts';
import type { RateLimiter } from '../../core/guards.ts';
import { phoneParts, type Destination } from '../../core/destinations.ts';
import type { AuditTrail } from '../../ops/audit.ts';
import type { Metrics } from '../../ops/metrics.ts';
import type { CodeStore } from './code-store.ts';
import type { ResendCooldown } from './resend-cooldown.ts';
import type { SendTiming } from './send-timing.ts';

export interface CodeSettings {
  readonly registerByEmail: boolean;
  readonly registerBySms: boolean;
  readonly sendPerIp: RateLimit;
  readonly sendPerDestination: RateLimit;
  /** Sends to one destination from all requesters together: bounds what it can cost in SMS. */
  readonly sendPerDestinationAll: RateLimit;
}

/** Everything the one-time-code flows use. */
export interface CodeFlowDeps {
  readonly accounts: AccountRepo;
  /** Told of a device new to the account at login (src/flows/alerts/). */
  readonly alerts?: StartSessionDeps['alerts'];
  readonly events: EventSink;
  readonly sessions: SessionService;
  readonly hasher: PasswordHasher;
  readonly sender: Sender;
  readonly codes: CodeStore;
  readonly cooldown: ResendCooldown;
  readonly timing: SendTiming;
  readonly limiter: RateLimiter;
  readonly audit: AuditTrail;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: SenderLogger;
  readonly settings: CodeSettings;
  /** Asked once the code was right: an account with a second factor gets a ticket, not a session. */
  readonly secondStep: SecondStepGate;
  /** octo-server's Redis, kept in step with the sessions (start-session.ts); absent: none. */
  readonly octoMirror?: OctoMirror | null;
}

/** Whether a code for an unknown destination on this channel may create an account. */
export function registrationOpen(settings: CodeSettings, channel: CodeChannel): boolean {
  return channel === 'email' ? settings.registerByEmail : settings.registerBySms;
}

/**
 * The account that holds the destination, proven or not: whom a code may be delivered for (a
 * verify code goes to a claimed address, so that its holder can prove it).
 */
export async function findByDestination(accounts: AccountRepo, destination: Destination): Promise<User | null> {
  if (destination.channel === 'email') return accounts.findByEmail(destination.to);
  const phone = phoneParts(destination);
  return phone === null ? null : accounts.findByPhone(phone.zone, phone.phone);
}

/**
 * The account that PROVED the destination: the only one a code for it may sign in or reset. An
 * address someone merely typed at registration belongs to nobody — else a registrant who typed a
 * victim's email would receive the victim's code logins into an account whose password they know.
 */
export async function findOwner(accounts: AccountRepo, destination: Destination): Promise<User | null> {
  const holder = await findByDestination(accounts, destination);
  return holder !== null && proven(holder, destination) ? holder : null;
}

export function proven(user: User, destination: Destination): boolean {
  return destination.channel === 'email' ? user.emailVerified : user.phoneVerified;
}

/** The destination as the account store spells an address; null for a malformed phone. */
export function addressOf(destination: Destination): Address | null {
  if (destination.channel === 'email') return { channel: 'email', email: destination.to };
  const phone = phoneParts(destination);
  return phone === null ? null : { channel: 'sms', zone: phone.zone, phone: phone.phone };
}
