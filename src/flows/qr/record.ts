/**
 * One QR login request = one Kv record, `qr:{<uuid>}`, holding everything about it. Every change is
 * a compare-and-set of the whole value (see transition.ts), so the state only moves forward:
 *
 *   waitScan → scanned → authed → consumed
 *                      ↘ rejected
 *
 * and any live state becomes `expired` once `expires_at` has passed. `consumed` is internal (the
 * auth code was exchanged); pollers see it as `expired`, like every used thing (docs/api.md §3, 410).
 */
import type { DeviceInfo } from '../../core/sessions/record.ts';

export type QrState = 'waitScan' | 'scanned' | 'authed' | 'rejected' | 'consumed';
/** What GET /v1/user/loginstatus reports. */
export type QrStatus = 'waitScan' | 'scanned' | 'authed' | 'rejected' | 'expired';
export const QR_STATUSES: readonly QrStatus[] = ['waitScan', 'scanned', 'authed', 'rejected', 'expired'];

/** Only browsers and desktops log in by QR; the app is the one that scans. */
export type RequesterFlag = 1 | 2;

/** The browser or desktop that asked to be logged in: shown to the scanner, used for the session. */
export interface Requester {
  readonly flag: RequesterFlag;
  readonly device: DeviceInfo;
  readonly ip: string;
  readonly user_agent: string;
}

/** cookie: an HttpOnly cookie set by loginuuid holds the poll secret; address: the requester's IP and user agent. */
export type LegacyBinding = { readonly binding: 'cookie' } | { readonly binding: 'address'; readonly poll_secret: string };

export interface QrRecord {
  /** Bumped by every transition, so two writers never produce the same value for one CAS. */
  readonly version: number;
  readonly status: QrState;
  readonly requester: Requester;
  /** SHA-256 of the poll secret: a copy of the store does not let anyone poll or exchange. */
  readonly poll_secret_hash: string;
  /** Set by the first scan; never shown to the poller. */
  readonly scanner_uid: string | null;
  /**
   * The app session that scanned: the only one that may answer, and the one whose approval the
   * auth code carries, so the code dies with it (docs/design.md §3.5). Null until scanned.
   */
  readonly scanner_sid: string | null;
  /** Fingerprint of the scanner's password at approval: a password change or reset since voids the code. */
  readonly password_stamp: string | null;
  /** Drawn at approval; the auth code is derived from it and the poll secret (secrets.ts), never stored. */
  readonly code_nonce: string | null;
  readonly created_at: number;
  /**
   * compat.octo_qr (legacy.ts): how a poller without a poll secret is recognised as the requester.
   * `poll_secret` is kept (in clear) only for `address`: the server must derive the auth code for
   * a client that holds no secret. Absent on latchkey's own requests.
   */
  readonly legacy?: LegacyBinding;
  /** When the current state lapses: unscanned or unanswered requests, unexchanged codes. */
  readonly expires_at: number;
}

/**
 * The record stays this long after it lapses, so a late scan, poll or exchange learns "expired"
 * (410) rather than "unknown" (404). After that the uuid is simply unknown.
 */
export const RETAIN_AFTER_EXPIRY_MS = 10 * 60_000;

export const recordKey = (uuid: string): string => `qr:{${uuid}}`;
/** Wake-ups for the long-poll; a hint only, the record is the truth. */
export const statusChannel = (uuid: string): string => `qr:${uuid}`;

export function visibleStatus(record: QrRecord, now: number): QrStatus {
  if (record.status === 'consumed') return 'expired';
  if (record.status === 'rejected') return 'rejected';
  return now >= record.expires_at ? 'expired' : record.status;
}

export function parseQrRecord(raw: string): QrRecord | null {
  try {
    const record = JSON.parse(raw) as Partial<QrRecord>;
    if (typeof record.version !== 'number' || typeof record.poll_secret_hash !== 'string') return null;
    // A record written before the scanner's sid and the code nonce were kept names no approving
    // session and no code: it can be polled until it lapses, but never answered or exchanged.
    return {
      ...record,
      scanner_sid: record.scanner_sid ?? null,
      password_stamp: record.password_stamp ?? null,
      code_nonce: record.code_nonce ?? null,
    } as QrRecord;
  } catch {
    return null;
  }
}

/** The store TTL of a record: its lapse time plus the retention above. */
export function storeTtlMs(record: QrRecord, now: number): number {
  return Math.max(1, record.expires_at + RETAIN_AFTER_EXPIRY_MS - now);
}
