/**
 * The account database's tables as Kysely sees them. Column names are snake_case as stored;
 * the repo maps rows to the port's camelCase records. Times are epoch milliseconds (bigint columns,
 * read back as numbers on both databases — see open.ts for PostgreSQL's int8 parser).
 */
import type { Generated } from 'kysely';
import type { AccountStatus, Role } from '../../ports/accounts.ts';

export interface UsersTable {
  uid: string;
  username: string;
  /**
   * usernameKey(username) (NFKC, case-folded): the unique key, so `Alice`, `alice` and `ａｌｉｃｅ`
   * collide on every DB.
   */
  username_lower: string;
  name: string;
  email: string | null;
  email_lower: string | null;
  zone: string | null;
  phone: string | null;
  /** 0 or 1 (an integer on both databases): the address was proven with a code or by a trusted IdP. */
  email_verified: number;
  phone_verified: number;
  password_hash: string | null;
  role: Role;
  status: AccountStatus;
  created_at: number;
  updated_at: number;
}

export interface DevicesTable {
  uid: string;
  device_id: string;
  name: string;
  model: string;
  last_login_at: number;
}

export interface AuditEventsTable {
  id: Generated<number>;
  type: string;
  uid: string | null;
  sid: string | null;
  ip: string | null;
  user_agent: string | null;
  result: 'ok' | 'fail';
  reason: string | null;
  at: number;
}

/**
 * One row per (event, webhook) still to deliver (docs/design.md §3.6). Delivered and dropped rows are
 * deleted, so the table holds only what is owed. `id` only grows: it is the order per user.
 */
export interface WebhookOutboxTable {
  id: Generated<number>;
  /** WebhookTarget.key: a hash of the URL, so the rows survive reordering the config list. */
  webhook: string;
  /** The `webhook-id` header: the same on every attempt. */
  event_id: string;
  uid: string;
  type: string;
  /** The JSON body, exactly as signed and sent. */
  body: string;
  created_at: number;
  attempts: number;
  /** Not tried again before this (epoch ms). */
  next_at: number;
  /** A worker holds the row until then (epoch ms; 0: free). */
  leased_until: number;
}

export interface Database {
  users: UsersTable;
  devices: DevicesTable;
  audit_events: AuditEventsTable;
  webhook_outbox: WebhookOutboxTable;
}

/** Explicit names, so a PostgreSQL 23505 error says which field collided (see account-repo.ts). */
export const USERS_USERNAME_UNIQUE = 'users_username_unique';
export const USERS_EMAIL_UNIQUE = 'users_email_unique';
export const USERS_PHONE_UNIQUE = 'users_phone_unique';
