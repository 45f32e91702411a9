/** The account database (users, devices, audit events), behind Kysely on SQLite or PostgreSQL. */

export type Role = 'user' | 'admin';
export type AccountStatus = 'active' | 'banned';

export interface User {
  readonly uid: string;
  readonly username: string;
  readonly name: string;
  readonly email: string | null;
  readonly zone: string | null;
  readonly phone: string | null;
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
  readonly passwordHash: string | null;
  readonly role?: Role;
  /** Default active; `latchkey import` creates banned accounts banned in one statement. */
  readonly status?: AccountStatus;
}

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

export interface AccountRepo {
  /** Throws UniqueViolation when username (case-insensitive), email or zone+phone is taken. */
  createUser(user: NewUser, now: number): Promise<User>;
  findByUid(uid: string): Promise<User | null>;
  /** Case-insensitive. */
  findByUsername(username: string): Promise<User | null>;
  /** Case-insensitive. */
  findByEmail(email: string): Promise<User | null>;
  findByPhone(zone: string, phone: string): Promise<User | null>;
  /** Only replaces the hash if it is still `expected` (a concurrent change wins). */
  updatePasswordHash(uid: string, expected: string | null, next: string, now: number): Promise<boolean>;
  setStatus(uid: string, status: AccountStatus, now: number): Promise<boolean>;
  setRole(uid: string, role: Role, now: number): Promise<boolean>;
  /**
   * Bans or demotes unless that leaves no active admin: the check and the write are one atomic
   * step, serialised against every other such change (two admins banning each other at once).
   */
  removeAccessKeepingAnAdmin(uid: string, change: AccessRemoval, now: number): Promise<AccessRemovalResult>;
  listUsers(query: UserQuery): Promise<{ users: User[]; total: number }>;

  upsertDevice(device: Device): Promise<void>;
  listDevices(uid: string): Promise<Device[]>;
  deleteDevice(uid: string, deviceId: string): Promise<boolean>;

  appendAudit(event: AuditEvent): Promise<void>;
  queryAudit(query: AuditQuery): Promise<StoredAuditEvent[]>;
  pruneAudit(olderThan: number): Promise<number>;

  /** True when the database answers (for /readyz). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
