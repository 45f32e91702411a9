/**
 * The `mfa` section: second factors (docs/design.md §4, second factors). TOTP secrets are sealed under
 * `secret_key` (the format of `oidc.token_key`: `{id, key}` or a list, the first seals, every one
 * opens, so keys rotate); without it the SSO key is used, and without either TOTP is not offered.
 */
import { ConfigError } from './errors.ts';
import { parseKeys, type TokenKey } from './oidc.ts';
import { bool, int } from './values.ts';

export interface MfaConfig {
  readonly secretKeys: readonly TokenKey[];
  /** The name authenticator apps show beside the account. */
  readonly issuer: string;
  /** How long a proven factor lets a session change factors (step-up, flows/mfa/step-up.ts). */
  readonly stepUpSeconds: number;
  /** Administrators without a second factor may only enrol one: every admin route refuses them. */
  readonly requireForAdmins: boolean;
}

export function parseMfaConfig(value: unknown, oidcKeys: readonly TokenKey[]): MfaConfig {
  const mfa = value ?? {};
  if (mfa === null || typeof mfa !== 'object' || Array.isArray(mfa)) throw new ConfigError('mfa', 'an object', value);
  const { secret_key: secretKey, issuer = 'latchkey', step_up_seconds: stepUp, require_for_admins: forAdmins } = mfa as Record<string, unknown>;
  const requireForAdmins = bool(forAdmins, 'mfa.require_for_admins', false);
  if (typeof issuer !== 'string' || issuer.length === 0 || issuer.length > 64 || issuer.includes(':')) {
    throw new ConfigError('mfa.issuer', '1 to 64 characters without ":"', issuer);
  }
  const stepUpSeconds = int(stepUp, 'mfa.step_up_seconds', 300, 30, 86_400);
  return { secretKeys: secretKey === undefined ? oidcKeys : parseKeys(secretKey, 'mfa.secret_key'), issuer, stepUpSeconds, requireForAdmins };
}
