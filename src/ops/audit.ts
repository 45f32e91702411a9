import type { AccountRepo, AuditEvent } from '../ports/accounts.ts';
import type { Clock } from '../ports/clock.ts';

export interface AuditContext {
  readonly ip: string;
  readonly userAgent: string;
}

export type AuditRecord = Omit<AuditEvent, 'at' | 'ip' | 'userAgent'> & { readonly context?: AuditContext };

/**
 * Who acted, in the `reason` of an operator's audit row: an administrator over HTTP, or the command
 * line. One format for both (docs/api.md §9), so a search for an account's bans or revoke-alls finds
 * every row however it was made.
 */
export type Operator = { readonly admin: string } | 'cli';

const by = (operator: Operator): string => (operator === 'cli' ? 'cli' : `admin:${operator.admin}`);

/** `ban` / `unban`: `<by>; <n> session(s) revoked`. */
export const statusChangeReason = (operator: Operator, revoked: number): string => `${by(operator)}; ${revoked} session(s) revoked`;

/** `role_change`: `<by>; <role>`. */
export const roleChangeReason = (operator: Operator, role: string): string => `${by(operator)}; ${role}`;

/** `revoke` of every session of an account: `<by>; all:<n>`. */
export const revokeAllReason = (operator: Operator, revoked: number): string => `${by(operator)}; all:${revoked}`;

export interface AuditLogger {
  warn(object: Record<string, unknown>, message: string): void;
}

/**
 * Security events go to the account database. Writing one never fails the request it describes:
 * a lost audit row is logged, while a refused login because the audit table was busy would be worse.
 */
export class AuditTrail {
  readonly #repo: AccountRepo;
  readonly #clock: Clock;
  readonly #log: AuditLogger;

  constructor(repo: AccountRepo, clock: Clock, log: AuditLogger) {
    this.#repo = repo;
    this.#clock = clock;
    this.#log = log;
  }

  async record(event: AuditRecord): Promise<void> {
    const { context, ...rest } = event;
    try {
      await this.#repo.appendAudit({
        ...rest,
        ip: context?.ip ?? null,
        userAgent: context?.userAgent.slice(0, 512) ?? null,
        at: this.#clock.now(),
      });
    } catch (error) {
      this.#log.warn({ err: error, type: event.type }, 'audit event not recorded');
    }
  }
}
