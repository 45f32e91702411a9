/**
 * The `mfa` section: second factors (docs/design.md §4, second factors). TOTP secrets are sealed under
 * `secret_key` (the format of `oidc.token_key`: `{id, key}` or a list, the first seals, every one
 * opens, so keys rotate); without it the SSO key is used, and without either TOTP is not offered.
 */
import { ConfigError } from './errors.ts';
import { parseKeys, type TokenKey } from './oidc.ts';

export interface MfaConfig {
  readonly secretKeys: readonly TokenKey[];
  /** The name authenticator apps show beside the account. */
  readonly issuer: string;
}

export function parseMfaConfig(value: unknown, oidcKeys: readonly TokenKey[]): MfaConfig {
  const mfa = value ?? {};
  if (mfa === null || typeof mfa !== 'object' || Array.isArray(mfa)) throw new ConfigError('mfa', 'an object', value);
  const { secret_key: secretKey, issuer = 'latchkey' } = mfa as Record<string, unknown>;
  if (typeof issuer !== 'string' || issuer.length === 0 || issuer.length > 64 || issuer.includes(':')) {
    throw new ConfigError('mfa.issuer', '1 to 64 characters without ":"', issuer);
  }
  return { secretKeys: secretKey === undefined ? oidcKeys : parseKeys(secretKey, 'mfa.secret_key'), issuer };
}
