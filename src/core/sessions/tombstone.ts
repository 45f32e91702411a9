/**
 * Why a session ended, kept for a while under `ended:<sid>` (never the token) so that a device whose
 * token stopped working can say "signed in on another device" instead of treating every 401 alike
 * and logging in again — which ends the other device's session in turn ("kick ping-pong").
 *
 * Written by the call that ended the session (after its GETDEL, so only that call writes it), and at
 * creation as `expired` at `expires_at`, since expiry is no call; read only when a token fails to
 * validate, so live tokens pay nothing (docs/api.md §3).
 */
import type { RevokeReason, Session } from './record.ts';
import { isDeviceFlag, type DeviceFlag } from './policy.ts';

export type EndedReason =
  | 'logout' | 'replaced' | 'cap' | 'revoked' | 'admin' | 'banned' | 'password_changed' | 'password_reset' | 'expired' | 'idp_logout'
  | 'passkey_removed';

export interface EndedDetails {
  readonly reason: EndedReason;
  /** Unix ms. */
  readonly ended_at: number;
  /** The session that took this one's place (`replaced`, `cap`). */
  readonly by?: { readonly device_flag: DeviceFlag; readonly device_name: string; readonly device_model: string };
}

/** What each way of ending a session tells its device; null: the token was never handed out. */
const TOLD: Record<RevokeReason, EndedReason | null> = {
  logout: 'logout',
  revoked: 'revoked',
  others: 'revoked',
  device: 'revoked',
  replaced: 'replaced',
  cap: 'cap',
  ban: 'banned',
  all: 'admin',
  password: 'password_reset',
  password_changed: 'password_changed',
  idle: 'expired',
  idp_logout: 'idp_logout',
  passkey_removed: 'passkey_removed',
  aborted: null,
};

export function tombstone(reason: RevokeReason, endedAt: number, by?: Session): EndedDetails | null {
  const told = TOLD[reason];
  if (told === null) return null;
  if (by === undefined) return { reason: told, ended_at: endedAt };
  return { reason: told, ended_at: endedAt, by: { device_flag: by.device_flag, device_name: by.device_name, device_model: by.device_model } };
}

const REASONS = new Set<string>(Object.values(TOLD).filter((reason) => reason !== null));

export function parseTombstone(raw: string | null): EndedDetails | null {
  if (raw === null) return null;
  try {
    const value: unknown = JSON.parse(raw);
    if (value === null || typeof value !== 'object') return null;
    const { reason, ended_at: endedAt, by } = value as Record<string, unknown>;
    if (typeof reason !== 'string' || !REASONS.has(reason) || typeof endedAt !== 'number') return null;
    const details = { reason: reason as EndedReason, ended_at: endedAt };
    if (by === null || typeof by !== 'object') return details;
    const { device_flag: flag, device_name: name, device_model: model } = by as Record<string, unknown>;
    return isDeviceFlag(flag) && typeof name === 'string' && typeof model === 'string'
      ? { ...details, by: { device_flag: flag, device_name: name, device_model: model } }
      : details;
  } catch {
    return null;
  }
}
