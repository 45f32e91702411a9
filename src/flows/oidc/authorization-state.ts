/**
 * The state of one authorization request, between authorize and callback. Keyed by a hash of the
 * `state` value (a store dump yields no usable state) and consumed with GETDEL, so a callback can
 * be completed once: a replayed or forged `state` finds nothing.
 */
import type { Kv } from '../../ports/kv.ts';
import type { DeviceFlag } from '../../core/sessions/policy.ts';
import type { DeviceInfo } from '../../core/sessions/record.ts';
import type { Binding } from './binding.ts';
import { s256 } from './binding.ts';

export const STATE_TTL_MS = 10 * 60 * 1000;

export interface AuthorizationState {
  readonly provider: string;
  readonly codeVerifier: string;
  readonly nonce: string;
  readonly returnTo: string;
  readonly flag: DeviceFlag;
  readonly device: DeviceInfo;
  readonly binding: Binding;
  readonly createdAt: number;
}

const stateKey = (state: string): string => `oidc:state:${s256(state)}`;

export async function saveState(kv: Kv, state: string, value: AuthorizationState): Promise<void> {
  if (!(await kv.set(stateKey(state), JSON.stringify(value), { nx: true, ttlMs: STATE_TTL_MS }))) {
    throw new Error('oidc state collision');
  }
}

/** The state, once; null when unknown, expired or already used. */
export async function consumeState(kv: Kv, state: string): Promise<AuthorizationState | null> {
  const raw = await kv.getdel(stateKey(state));
  return raw === null ? null : (JSON.parse(raw) as AuthorizationState);
}
