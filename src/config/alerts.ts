/**
 * The `alerts` section of the config: security notices mailed to an account's verified address
 * (src/flows/alerts/, docs/security.md §5a). Off by default: a deployment turns them
 * on once its sender delivers email and `public_url` says where the mail's link should point.
 */
import { ConfigError } from './errors.ts';

export interface AlertsConfig {
  /** Mail the account when a login brings a device it has never used. */
  readonly newDevice: boolean;
}

export function parseAlertsConfig(value: unknown): AlertsConfig {
  const alerts = value ?? {};
  if (alerts === null || typeof alerts !== 'object' || Array.isArray(alerts)) throw new ConfigError('alerts', 'an object', value);
  const newDevice = (alerts as Record<string, unknown>).new_device ?? false;
  if (typeof newDevice !== 'boolean') throw new ConfigError('alerts.new_device', 'true or false', newDevice);
  return { newDevice };
}
