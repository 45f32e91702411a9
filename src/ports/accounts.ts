/** The account database (users, devices, audit events), behind Kysely on SQLite or PostgreSQL. */
import type { DomainEvent } from './events.ts';

/**
 * The form a username is stored and shown in: NFKC, so fullwidth letters, ligatures and
 * decomposed accents become the ordinary characters they look like.
 */
export function normalizeUsername(username: string): string {
  return username.normalize('NFKC');
}

/**
 * The key usernames are unique by and looked up by, on write and on lookup alike: NFKC, then a
 * case fold, then NFKC again (lower-casing can leave a string that is no longer NFKC, e.g. `İ`).
 * `toLowerCase`, never `toLocaleLowerCase`: under a Turkish locale `I` would fold to `ı` and the
 * same name would get a different key on a differently configured node.
 */
export function usernameKey(username: string): string {
  return username.normalize('NFKC').toLowerCase().normalize('NFKC');
}

export type Role = 'user' | 'admin';
export type AccountStatus = 'active' | 'banned';

export interface User {
  readonly uid: string;
  readonly username: string;
  readonly name: string;
  readonly email: string | null;
  readonly zone: string | null;
  readonly phone: string | null;
  /**
   * Whether a code sent to the address was entered (or a trusted IdP vouched for it). An unverified
   * address is only a claim: code login, password reset and SSO linking never match it.
   */
  readonly emailVerified: boolean;
  readonly phoneVerified: boolean;
  readonly passwordHash: string | null;
  readonly role: Role;
  readonly status: AccountStatus;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface NewUser {
  readonly uid: string;
  readonly username: string;
  readonly name: string;
  readonly email?: string | null;
  readonly zone?: string | null;
  readonly phone?: string | null;
  /** Default false: an address is a claim until proven. */
  readonly emailVerified?: boolean;
  readonly phoneVerified?: boolean;
  readonly passwordHash: string | null;
  readonly role?: Role;
  /** Default active; `latchkey import` creates banned accounts banned in one statement. */
  readonly status?: AccountStatus;
}

/** An email or phone number as the account store keeps it (email as given; folded on compare). */
export type Address =
  | { readonly channel: 'email'; readonly email: string }
  | { readonly channel: 'sms'; readonly zone: string; readonly phone: string };

export interface Device {
  readonly uid: string;
  readonly deviceId: string;
  readonly name: string;
  readonly model: string;
  readonly lastLoginAt: number;
}

export interface AuditEvent {
  readonly type: string;
  readonly uid: string | null;
  readonly sid: string | null;
  readonly ip: string | null;
  readonly userAgent: string | null;
  readonly result: 'ok' | 'fail';
  readonly reason: string | null;
  readonly at: number;
}

export interface StoredAuditEvent extends AuditEvent {
  readonly id: number;
}

export interface AuditQuery {
  readonly uid?: string;
  readonly type?: string;
  readonly since?: number;
  /** Only events with id below this (paging backwards). */
  readonly beforeId?: number;
  readonly limit: number;
}

export interface UserQuery {
  /** Matches username, name, email or phone (case-insensitive substring). */
  readonly query?: string;
  readonly offset: number;
  readonly limit: number;
}

/** A change that may take an active admin away: a ban or a demotion. */
export type AccessRemoval = { readonly status: 'banned' } | { readonly role: 'user' };
export type AccessRemovalResult = 'done' | 'not_found' | 'last_admin';

/** Which unique field a create or update collided with. */
export type UniqueField = 'username' | 'email' | 'phone';

export class UniqueViolation extends Error {
  readonly field: UniqueField;
  constructor(field: UniqueField) {
    super(`${field} already taken`);
    this.field = field;
  }
}

/**
 * The changes below take `events`: written to the webhook outbox in the change's own transaction, and
 * only if the change was made (docs/design.md §3.6). None configured: the change alone.
 */
export interface AccountRepo {
  /** Throws UniqueViolation when username (case-insensitive), email or zone+phone is taken. */
  createUser(user: NewUser, now: number, events?: readonly DomainEvent[]): Promise<User>;
  findByUid(uid: string): Promise<User | null>;
  /** Case-insensitive, and compatibility-normalised (NFKC): `ａｌｉｃｅ` finds `alice`. */
  /** By `usernameKey(username)`, so every spelling that folds to the same key finds the account. */
  findByUsername(username: string): Promise<User | null>;
  /** Case-insensitive. The holder of the address, verified or not: callers check `emailVerified`. */
  findByEmail(email: string): Promise<User | null>;
  /** The holder of the number, verified or not: callers check `phoneVerified`. */
  findByPhone(zone: string, phone: string): Promise<User | null>;
  /**
   * Drops the address from whichever account holds it UNVERIFIED (the address's real owner just
   * proved it), and returns that account's uid; null when nobody held it unverified. A verified
   * holder is never touched.
   */
  releaseUnverified(address: Address, now: number): Promise<string | null>;
  /** Marks the address proven on `uid`, only if that account still holds it; false otherwise. */
  markVerified(uid: string, address: Address, now: number): Promise<boolean>;
  /** Only replaces the hash if it is still `expected` (a concurrent change wins). */
  updatePasswordHash(uid: string, expected: string | null, next: string, now: number, events?: readonly DomainEvent[]): Promise<boolean>;
  setStatus(uid: string, status: AccountStatus, now: number, events?: readonly DomainEvent[]): Promise<boolean>;
  setRole(uid: string, role: Role, now: number, events?: readonly DomainEvent[]): Promise<boolean>;
  /**
   * Bans or demotes unless that leaves no active admin: the check and the write are one atomic
   * step, serialised against every other such change (two admins banning each other at once).
   */
  removeAccessKeepingAnAdmin(uid: string, change: AccessRemoval, now: number, events?: readonly DomainEvent[]): Promise<AccessRemovalResult>;
  listUsers(query: UserQuery): Promise<{ users: User[]; total: number }>;

  /**
   * Records a device seen at login; true when the user had no row for this device_id (a new device).
   * `events`, given whether it is new, go to the webhook outbox in the same transaction.
   */
  upsertDevice(device: Device, events?: (isNew: boolean) => readonly DomainEvent[]): Promise<boolean>;
  listDevices(uid: string): Promise<Device[]>;
  deleteDevice(uid: string, deviceId: string): Promise<boolean>;
  /**
   * Users with more than `cap` device rows, or with one whose last login is before `olderThan`:
   * the candidates for pruning, in uid order after `afterUid` (paging), at most `limit`.
   */
  listDeviceOwnersToPrune(olderThan: number, cap: number, afterUid: string, limit: number): Promise<string[]>;
  /**
   * Deletes these device rows of the user whose last login is before `loggedInBefore` (a login
   * that touched one meanwhile keeps it); returns how many went.
   */
  deleteDevices(uid: string, deviceIds: readonly string[], loggedInBefore: number): Promise<number>;

  appendAudit(event: AuditEvent): Promise<void>;
  queryAudit(query: AuditQuery): Promise<StoredAuditEvent[]>;
  pruneAudit(olderThan: number): Promise<number>;

  /** True when the database answers (for /readyz). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
