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
  /** How long a proven factor lets a session change factors (step-up, flows/mfa/step-up.ts). */
  readonly stepUpSeconds: number;
  /** Administrators without a second factor may only enrol one: every admin route refuses them. */
  readonly requireForAdmins: boolean;
}

export function parseMfaConfig(value: unknown, oidcKeys: readonly TokenKey[]): MfaConfig {
  const mfa = value ?? {};
  if (mfa === null || typeof mfa !== 'object' || Array.isArray(mfa)) throw new ConfigError('mfa', 'an object', value);
  const { secret_key: secretKey, issuer = 'latchkey', step_up_seconds: stepUp = 300, require_for_admins: forAdmins = false } = mfa as Record<string, unknown>;
  const requireForAdmins = forAdmins === true || forAdmins === 'true' ? true : forAdmins === false || forAdmins === 'false' ? false : null;
  if (requireForAdmins === null) throw new ConfigError('mfa.require_for_admins', 'true or false', forAdmins);
  if (typeof issuer !== 'string' || issuer.length === 0 || issuer.length > 64 || issuer.includes(':')) {
    throw new ConfigError('mfa.issuer', '1 to 64 characters without ":"', issuer);
  }
  const stepUpSeconds = typeof stepUp === 'string' && /^\d+$/.test(stepUp) ? Number(stepUp) : stepUp;
  if (typeof stepUpSeconds !== 'number' || !Number.isInteger(stepUpSeconds) || stepUpSeconds < 30 || stepUpSeconds > 86_400) {
    throw new ConfigError('mfa.step_up_seconds', 'an integer from 30 to 86400', stepUp);
  }
  return { secretKeys: secretKey === undefined ? oidcKeys : parseKeys(secretKey, 'mfa.secret_key'), issuer, stepUpSeconds, requireForAdmins };
}
