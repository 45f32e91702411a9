/**
 * The one-time handoff code: the callback leaves the resolved login under it for 60 s, and the
 * client that started the login (its cookie or app verifier) trades it for a session once. The
 * session token is made only at that exchange, so no token ever sits in the store.
 */
import type { Kv } from '../../ports/kv.ts';
import type { Random } from '../../ports/random.ts';
import type { DeviceFlag } from '../../core/sessions/policy.ts';
import type { DeviceInfo } from '../../core/sessions/record.ts';
import type { Binding } from './binding.ts';
import { s256 } from './binding.ts';

export const HANDOFF_TTL_MS = 60 * 1000;
/** What a handoff key holds after its exchange, so a second try is told "used" (410), not "unknown". */
const USED = 'used';

export interface Handoff {
  readonly provider: string;
  /** The ID token's `iss`, as openid-client validated it. */
  readonly issuer: string;
  readonly uid: string;
  readonly identityId: string;
  readonly binding: Binding;
  readonly flag: DeviceFlag;
  readonly device: DeviceInfo;
  /** The IdP session (`sid` claim), when the IdP sent one: back-channel logout names it. */
  readonly idpSid: string | null;
  /** The ID token's `amr`, for the session (absent in hand-offs written before it was kept). */
  readonly amr?: readonly string[] | null;
  /** Sealed with AAD naming this handoff's refresh token id. */
  readonly refreshToken: { readonly id: string; readonly sealed: string } | null;
  /** Sealed with AAD naming `idTokenHandle`. */
  readonly idToken: { readonly handle: string; readonly sealed: string } | null;
  /** When the IdP login completed here: an IdP logout after this ends what the code would start. */
  readonly authenticatedAt: number;
}

export type HandoffLookup =
  | { readonly status: 'unknown' }
  | { readonly status: 'used' }
  | { readonly status: 'ready'; readonly handoff: Handoff; readonly raw: string };

const handoffKey = (code: string): string => `oidc:handoff:${s256(code)}`;

export async function createHandoff(kv: Kv, random: Random, handoff: Handoff): Promise<string> {
  const code = random.bytes(32).toString('base64url');
  if (!(await kv.set(handoffKey(code), JSON.stringify(handoff), { nx: true, ttlMs: HANDOFF_TTL_MS }))) {
    throw new Error('oidc handoff collision');
  }
  return code;
}

export async function lookupHandoff(kv: Kv, code: string): Promise<HandoffLookup> {
  const raw = await kv.get(handoffKey(code));
  if (raw === null) return { status: 'unknown' };
  if (raw === USED) return { status: 'used' };
  return { status: 'ready', handoff: JSON.parse(raw) as Handoff, raw };
}

/** True the first time a code is presented without its binding: its owner is told once, not once per try. */
export function firstBindingMismatch(kv: Kv, code: string): Promise<boolean> {
  return kv.set(`oidc:handoff-mismatch:${s256(code)}`, '1', { nx: true, ttlMs: HANDOFF_TTL_MS });
}

/** Compare-and-set ready → used: of concurrent exchanges exactly one wins. */
export function markHandoffUsed(kv: Kv, code: string, raw: string): Promise<boolean> {
  return kv.compareAndSet(handoffKey(code), raw, USED, { keepTtl: true });
}
