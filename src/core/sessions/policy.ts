/** Device flags are WuKongIM's: APP = 0, Web = 1, PC = 2. Anything else is refused at the edge. */
export const DEVICE_FLAGS = [0, 1, 2] as const;
export type DeviceFlag = (typeof DEVICE_FLAGS)[number];

export function isDeviceFlag(value: unknown): value is DeviceFlag {
  return value === 0 || value === 1 || value === 2;
}

/**
 * exclusive: a new login of this flag revokes the previous session of the flag (one phone).
 * multi: up to `cap` sessions of the flag; past it the oldest is revoked.
 */
export type DevicePolicy = { readonly mode: 'exclusive' } | { readonly mode: 'multi'; readonly cap: number };
export type DevicePolicies = Readonly<Record<DeviceFlag, DevicePolicy>>;

export const defaultDevicePolicies: DevicePolicies = {
  0: { mode: 'exclusive' },
  1: { mode: 'multi', cap: 10 },
  2: { mode: 'multi', cap: 10 },
};

/**
 * A limit on the live sessions of a group of flags, on top of the per-flag policies (docs/design.md
 * §3.2, invariant 7): `evict_oldest` ends the oldest members past `max` (reason `cap`),
 * `reject_new` refuses the login (409 `session_limit`).
 */
export interface SessionLimit {
  readonly flags: readonly DeviceFlag[];
  readonly max: number;
  readonly onExceed: 'evict_oldest' | 'reject_new';
}
