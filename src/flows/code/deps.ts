import type { AccountRepo, User } from '../../ports/accounts.ts';
import type { Clock } from '../../ports/clock.ts';
import type { Random } from '../../ports/random.ts';
import type { CodeChannel, Sender, SenderLogger } from '../../ports/sender.ts';
import type { RateLimit } from '../../config.ts';
import type { SessionService } from '../../core/sessions/service.ts';
import type { PasswordHasher } from '../../core/passwords.ts';
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
}

/** Whether a code for an unknown destination on this channel may create an account. */
export function registrationOpen(settings: CodeSettings, channel: CodeChannel): boolean {
  return channel === 'email' ? settings.registerByEmail : settings.registerBySms;
}

export async function findByDestination(accounts: AccountRepo, destination: Destination): Promise<User | null> {
  if (destination.channel === 'email') return accounts.findByEmail(destination.to);
  const phone = phoneParts(destination);
  return phone === null ? null : accounts.findByPhone(phone.zone, phone.phone);
}
