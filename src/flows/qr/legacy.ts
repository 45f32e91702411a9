/**
 * compat.octo_qr: the TangSengDaoDao web client's QR login (docs/octo-compat.md §5). That client
 * polls `loginstatus?uuid` and redeems `login_authcode/<code>` with neither a poll secret nor a
 * body. Without the secret, whoever photographed the QR could poll and take the login (octo-server's
 * hole, docs/octo-server.md §8.2), so the requester is recognised another way, chosen at loginuuid:
 * - `cookie`: an HttpOnly, SameSite=Strict cookie set by loginuuid holds the poll secret. The web
 *   client is served from the API's origin, so its browser sends the cookie back; no script, and no
 *   other browser, has it.
 * - `address`: the loginuuid request came from another origin, where no cookie comes back. The
 *   poller must then be the requester's exact IP and user agent, as recorded at loginuuid.
 * A cookie that is present but does not match is refused, never tried as an address instead.
 */
import type { Kv } from '../../ports/kv.ts';
import { matchesHash } from './secrets.ts';
import { readQrRecord } from './transition.ts';
import type { QrFlowDeps } from './deps.ts';

export interface LegacyPoller {
  /** The value of this request's cookie (legacyCookieName), if the browser sent one. */
  readonly cookieSecret: string | undefined;
  readonly ip: string;
  readonly userAgent: string;
}

export type LegacyRefusal = 'not_legacy' | 'cookie' | 'no_cookie' | 'address';

export type LegacyIdentity =
  | { readonly kind: 'unknown' }
  | { readonly kind: 'refused'; readonly reason: LegacyRefusal }
  | { readonly kind: 'requester'; readonly pollSecret: string };

/** Whether this poller is the one that asked for `uuid`, and then the poll secret it stands for. */
export async function identifyLegacyPoller(deps: { readonly kv: Kv }, uuid: string, poller: LegacyPoller): Promise<LegacyIdentity> {
  const record = await readQrRecord(deps.kv, uuid);
  if (record === null) return { kind: 'unknown' };
  const legacy = record.legacy;
  if (legacy === undefined) return { kind: 'refused', reason: 'not_legacy' };
  if (poller.cookieSecret !== undefined) {
    return matchesHash(poller.cookieSecret, record.poll_secret_hash)
      ? { kind: 'requester', pollSecret: poller.cookieSecret }
      : { kind: 'refused', reason: 'cookie' };
  }
  if (legacy.binding === 'cookie') return { kind: 'refused', reason: 'no_cookie' };
  const { requester } = record;
  if (poller.ip !== requester.ip || poller.userAgent !== requester.user_agent) return { kind: 'refused', reason: 'address' };
  return { kind: 'requester', pollSecret: legacy.poll_secret };
}

/** The cookie of one request: one per uuid, so two tabs each asking for a QR do not clobber each other. */
export const legacyCookieName = (uuid: string): string => `latchkey_qr_${uuid}`;

/** Long enough for the whole flow: waiting for the scan, for the answer, and for the exchange. */
export function legacyCookieMaxAgeSeconds(deps: Pick<QrFlowDeps, 'config'>): number {
  const { requestTtlSeconds, authCodeTtlSeconds } = deps.config.qr;
  return 2 * requestTtlSeconds + authCodeTtlSeconds;
}

/** The auth code as these clients carry it: it names its request, since they redeem it with no body. */
export const legacyAuthCode = (uuid: string, code: string): string => `${uuid}.${code}`;

const LEGACY_CODE = /^([0-9a-f]{32})\.([A-Za-z0-9_-]{43})$/;

export function splitLegacyAuthCode(value: string): { readonly uuid: string; readonly code: string } | null {
  const match = LEGACY_CODE.exec(value);
  return match === null ? null : { uuid: match[1] as string, code: match[2] as string };
}
