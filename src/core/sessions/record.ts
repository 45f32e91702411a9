import { isDeviceFlag, type DeviceFlag } from './policy.ts';

export type LoginMethod = 'password' | 'register' | 'code' | 'qr' | 'oidc' | 'passkey';
/**
 * `aborted`: a login undone before it answered (its IM server could not be told, docs/design.md §3.4).
 * `passkey_removed`: the passkey that made the session was removed (its device may be lost).
 */
export type RevokeReason =
  | 'logout' | 'revoked' | 'others' | 'replaced' | 'cap' | 'ban' | 'all' | 'password' | 'password_changed' | 'device' | 'aborted' | 'idle'
  | 'idp_logout' | 'passkey_removed';

export interface DeviceInfo {
  readonly device_id: string;
  readonly device_name: string;
  readonly device_model: string;
}

/** What `sess:<sid>` holds. Written once, with NX, at creation; never rewritten. */
export interface SessionRecord extends DeviceInfo {
  readonly uid: string;
  readonly device_flag: DeviceFlag;
  readonly method: LoginMethod;
  readonly ip: string;
  readonly user_agent: string;
  readonly created_at: number;
  readonly expires_at: number;
  /**
   * How the login was authenticated, when more than its method says (docs/design.md §4, second
   * factors): `pwd`/`code` then `otp`/`recovery` for a second step; an SSO login's IdP `amr` claim.
   */
  readonly amr?: readonly string[];
  /**
   * The credential id of the passkey a `passkey` login signed with, so removing that passkey ends
   * the sessions it made (docs/api.md §14). Absent in every other session, and in records written
   * before it existed: those were made by no passkey this can name.
   */
  readonly passkey_id?: string;
}

export interface Session extends SessionRecord {
  readonly sid: string;
}

export interface ListedSession extends Session {
  readonly last_seen_at: number;
}

/**
 * The per-user index maps sid → "flag:created_at:expires_at", so policies and pruning need no
 * extra reads of the session records.
 */
export interface IndexEntry {
  readonly sid: string;
  readonly flag: DeviceFlag;
  readonly createdAt: number;
  readonly expiresAt: number;
}

export function encodeIndexEntry(flag: DeviceFlag, createdAt: number, expiresAt: number): string {
  return `${flag}:${createdAt}:${expiresAt}`;
}

/** One index entry, or null when its value is not `flag:created_at:expires_at` with a known flag. */
export function decodeIndexEntry(sid: string, value: string): IndexEntry | null {
  const [flag, createdAt, expiresAt] = value.split(':').map(Number);
  if (!isDeviceFlag(flag) || createdAt === undefined || expiresAt === undefined) return null;
  return { sid, flag, createdAt, expiresAt };
}

export function decodeIndex(hash: Record<string, string>): IndexEntry[] {
  return Object.entries(hash).flatMap(([sid, value]) => decodeIndexEntry(sid, value) ?? []);
}

export function parseSessionRecord(sid: string, raw: string): Session | null {
  let record: unknown;
  try {
    record = JSON.parse(raw);
  } catch {
    return null;
  }
  if (!isRecordLike(record)) return null;
  // The parsed object becomes the session (no copy: this runs on every validated request); the sid
  // comes from the key that was read, never from the stored JSON.
  record.sid = sid;
  return record;
}

function isRecordLike(value: unknown): value is { -readonly [K in keyof Session]: Session[K] } {
  return typeof value === 'object' && value !== null && 'uid' in value && typeof value.uid === 'string';
}
