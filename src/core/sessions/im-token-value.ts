import type { Random } from '../../ports/random.ts';

/**
 * What `user:{uid}:im:<flag>` holds (docs/design.md §3.4):
 * - `live:<token>:<nonce>` — the IM token this flag's live sessions share;
 * - `owed:<token>:<nonce>` — a token latchkey has ended but the IM server has not yet been told to
 *   drop (it was down): no login reuses it, and a device_quit is owed (im-quit-queue.ts);
 * - `none:<nonce>` — no token, written (briefly) only to commit an IM call that found nothing to
 *   commit (im-tokens.ts); an absent key means the same.
 * The nonce is new on every write, so a compare-and-set or compare-and-delete against a value read
 * earlier fails if ANY write came in between — a refresh of the same token included. Without it a
 * last logout could delete a token that a concurrent login had just re-confirmed and handed out.
 */
export type ImTokenValue =
  | { readonly state: 'live' | 'owed'; readonly token: string }
  | { readonly state: 'none' };

const HELD = /^(live|owed):([0-9a-f]{32}):[A-Za-z0-9_-]{1,16}$/;

/** `live` or `owed` with a token; anything else (absent, `none:<nonce>`, unreadable) is no token. */
export function parseImTokenValue(raw: string | null): ImTokenValue {
  const held = raw === null ? null : HELD.exec(raw);
  return held === null ? { state: 'none' } : { state: held[1] as 'live' | 'owed', token: held[2] as string };
}

export function encodeImTokenValue(value: ImTokenValue, random: Random): string {
  const nonce = random.bytes(6).toString('base64url');
  return value.state === 'none' ? `none:${nonce}` : `${value.state}:${value.token}:${nonce}`;
}

/** 16 random bytes in hex: the 32-character shape WuKongIM clients of the octo family expect. */
export function newImToken(random: Random): string {
  return random.bytes(16).toString('hex');
}

/**
 * compat.octo (docs/octo-compat.md §2, 8): on Web and PC the session token itself is WuKongIM's
 * token, because the TangSengDaoDao web client connects with `token` and ignores `im_token`. The
 * store never holds a session token (token.ts), so the flag's value keeps this tag of it instead:
 * the first 16 bytes of SHA-256(token) in hex, read from the sid (which is that hash).
 */
export function sessionTokenTag(sid: string): string {
  return Buffer.from(sid, 'base64url').toString('hex').slice(0, 32);
}
