/**
 * Step-up (docs/design.md §4, second factors): what guards the actions a thief holding one stolen
 * token must not take (turning a factor on or off, replacing recovery codes). A session counts as
 * proven for `step_up_seconds` after a factor was shown in it: the password (or a second step) at
 * its own login, or `POST /v1/user/step_up` later, which stores `stepup:<sid>` for that long. Code,
 * QR and SSO logins prove no factor of latchkey's, so their sessions step up before such actions.
 */
import { LatchkeyError } from '../../core/errors.ts';
import type { Session } from '../../core/sessions/record.ts';
import type { Clock } from '../../ports/clock.ts';
import type { Kv } from '../../ports/kv.ts';

export interface StepUpDeps {
  readonly kv: Kv;
  readonly clock: Clock;
  readonly stepUpMs: number;
}

/** The ways a session can step up: always the password; TOTP when the account has it. */
export type StepUpMethod = 'password' | 'totp';

const stepUpKey = (sid: string): string => `stepup:${sid}`;

/**
 * Logins that showed a factor of latchkey's: the password, or a passkey (a key on the user's device,
 * unlocked by its user verification: as strong as the password and a second factor together). The
 * session is proven from its creation.
 */
const PROVEN_AT_LOGIN = new Set<string>(['password', 'register', 'passkey']);

/**
 * Whether the session showed a second factor when it was made: a second step (TOTP or a recovery
 * code), a passkey, or SSO (whose IdP latchkey trusts). What makes a QR approval strong, and what
 * `mfa.require_for_admins` asks of an administrator's session.
 */
export function provedSecondFactor(session: Session | null): boolean {
  if (session === null) return false;
  if (session.method === 'passkey' || session.method === 'oidc') return true;
  return session.amr?.some((factor) => factor === 'otp' || factor === 'recovery') === true;
}

/** Until when (Unix ms) the session counts as proven, or 0. */
export async function provenUntil(deps: StepUpDeps, session: Session): Promise<number> {
  const atLogin = PROVEN_AT_LOGIN.has(session.method) ? session.created_at + deps.stepUpMs : 0;
  const stepped = Number((await deps.kv.get(stepUpKey(session.sid))) ?? 0);
  return Math.max(atLogin, Number.isFinite(stepped) ? stepped : 0);
}

/** Throws 403 step_up_required unless the session proved a factor within step_up_seconds. */
export async function requireStepUp(deps: StepUpDeps, session: Session, methods: readonly StepUpMethod[]): Promise<void> {
  if ((await provenUntil(deps, session)) > deps.clock.now()) return;
  throw new LatchkeyError('step_up_required', 'confirm it is you first: POST /v1/user/step_up', { methods });
}

/** Records that the session proved a factor now; answers until when it counts. */
export async function markSteppedUp(deps: StepUpDeps, session: Session): Promise<number> {
  const until = deps.clock.now() + deps.stepUpMs;
  // The record outlives the session by at most step_up_seconds, and names only its sid.
  await deps.kv.set(stepUpKey(session.sid), String(until), { ttlMs: deps.stepUpMs });
  return until;
}
