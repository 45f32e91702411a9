/**
 * Where a one-time code goes: an email address or a `zone-phone` number, in one canonical form so
 * that `Alice@Example.test ` and `alice@example.test` share one code, one cooldown and one limit.
 */
import { createHash } from 'node:crypto';
import type { CodeChannel } from '../ports/sender.ts';

export interface Destination {
  readonly channel: CodeChannel;
  /** Lower-cased trimmed email, or `zone-phone` digits (`86-13800000000`). */
  readonly to: string;
}

/** The input was validated at the HTTP edge; this only canonicalizes it. */
export function normalizeDestination(channel: CodeChannel, raw: string): Destination {
  const trimmed = raw.trim();
  return { channel, to: channel === 'email' ? trimmed.normalize('NFC').toLowerCase() : trimmed };
}

/** `zone-phone` split for the account store; null when `to` is not a phone number. */
export function phoneParts(destination: Destination): { zone: string; phone: string } | null {
  const match = /^(\d{1,6})-(\d{4,20})$/.exec(destination.to);
  if (destination.channel !== 'sms' || match?.[1] === undefined || match[2] === undefined) return null;
  return { zone: match[1], phone: match[2] };
}

/**
 * A stable, non-reversible id for store keys and rate-limit counters, so the Kv store never holds an
 * email address or phone number (a store dump is not a contact list).
 */
export function destinationId(destination: Destination): string {
  return createHash('sha256').update(`${destination.channel}:${destination.to}`).digest('base64url').slice(0, 22);
}

/** For logs and audit rows: enough to recognise, not enough to contact (`al***@example.test`, `86-138****00`). */
export function maskDestination(destination: Destination): string {
  if (destination.channel === 'email') {
    const at = destination.to.lastIndexOf('@');
    return `${destination.to.slice(0, Math.min(2, Math.max(0, at - 1)))}***${destination.to.slice(at)}`;
  }
  const [zone = '', phone = ''] = destination.to.split('-');
  return phone.length > 6 ? `${zone}-${phone.slice(0, 3)}****${phone.slice(-2)}` : `${zone}-****`;
}
