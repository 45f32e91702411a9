/**
 * The `passkeys` section (docs/design.md §4, second factors; WebAuthn): the relying party a passkey
 * is bound to and the page origins an assertion may come from. A browser makes a passkey for an
 * `rp_id` (a domain) and later signs only for pages whose host is that domain or under it, so an
 * assertion phished on another site carries another rp id and origin and is refused.
 *
 * Defaults: with `public_url`, its host is the rp id and it is the one origin; without it,
 * `localhost` and `http://localhost:<the port latchkey listens on>` (origins `null` here, resolved
 * when the server has its port), which is what a developer opens. `127.0.0.1` is not a valid rp id.
 */
import { isIP } from 'node:net';
import { ConfigError } from './errors.ts';

export interface PasskeysConfig {
  readonly rpId: string;
  /** The name a browser shows when it asks to save or use a passkey. */
  readonly rpName: string;
  /** Allowed page origins; null: `http://localhost:<listening port>` (no public_url, no origins set). */
  readonly origins: readonly string[] | null;
}

const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

export function parsePasskeysConfig(value: unknown, publicUrl: string | undefined): PasskeysConfig {
  const raw = value ?? {};
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError('passkeys', 'an object', value);
  const { rp_id: rpIdValue, rp_name: rpName = 'latchkey', origins: originsValue } = raw as Record<string, unknown>;
  // A public_url on an IP address names no rp id (WebAuthn binds passkeys to domains): the localhost default then.
  const publicHost = publicUrl === undefined ? undefined : new URL(publicUrl).hostname;
  const fromPublicUrl = publicHost !== undefined && isDomain(publicHost) ? publicHost : undefined;
  const rpId = rpIdValue ?? fromPublicUrl ?? 'localhost';
  if (typeof rpId !== 'string' || !isDomain(rpId)) throw new ConfigError('passkeys.rp_id', 'a lower-case domain name such as example.com (not an IP address)', rpIdValue);
  if (typeof rpName !== 'string' || rpName.length === 0 || rpName.length > 64) throw new ConfigError('passkeys.rp_name', '1 to 64 characters', rpName);
  let origins: string[] | null;
  if (originsValue !== undefined) {
    if (!Array.isArray(originsValue) || originsValue.length === 0) throw new ConfigError('passkeys.origins', 'a non-empty list of origins', originsValue);
    origins = originsValue.map((origin: unknown) => checkedOrigin(origin, rpId));
  } else if (publicUrl !== undefined && publicHost !== undefined && (publicHost === rpId || publicHost.endsWith(`.${rpId}`))) {
    origins = [checkedOrigin(publicUrl, rpId)];
  } else if (rpId === 'localhost') {
    origins = null;
  } else {
    origins = [`https://${rpId}`];
  }
  return { rpId, rpName, origins };
}

function isDomain(host: string): boolean {
  return DOMAIN.test(host) && isIP(host) === 0;
}

/** An http(s) origin whose host is the rp id or under it (a browser signs for no other page). */
function checkedOrigin(value: unknown, rpId: string): string {
  const text = typeof value === 'string' ? value.replace(/\/$/, '') : '';
  const parsed = URL.parse(text);
  const expected = `an http(s) origin on ${rpId} or a subdomain of it, such as https://${rpId}`;
  if (parsed === null || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') || parsed.origin !== text) {
    throw new ConfigError('passkeys.origins', expected, value);
  }
  if (parsed.hostname !== rpId && !parsed.hostname.endsWith(`.${rpId}`)) throw new ConfigError('passkeys.origins', expected, value);
  return parsed.origin;
}

/** The origins an assertion may come from, once the listening port is known. */
export function passkeyOrigins(config: PasskeysConfig, listeningPort: number): string[] {
  return config.origins === null ? [`http://localhost:${listeningPort}`] : [...config.origins];
}
