/**
 * The step-up check of the routes a thief holding one stolen token must not use (docs/api.md §14):
 * changing factors, revoking every other session, every admin action that changes something.
 */
import type { Runtime } from '../runtime/runtime.ts';
import type { Session } from '../core/sessions/record.ts';
import { secondFactorStatus } from '../flows/mfa/second-factors.ts';
import { requireStepUp, type StepUpDeps, type StepUpMethod } from '../flows/mfa/step-up.ts';

export interface StepUpCheck {
  readonly deps: StepUpDeps;
  /** Throws 403 step_up_required unless the session showed a factor within mfa.step_up_seconds. */
  require(session: Session): Promise<void>;
}

export function stepUpCheck(runtime: Runtime): StepUpCheck {
  const deps: StepUpDeps = { kv: runtime.kv, clock: runtime.clock, stepUpMs: runtime.config.mfa.stepUpSeconds * 1000 };
  return {
    deps,
    async require(session) {
      const methods = await stepUpMethods(runtime, session.uid);
      // An account with no factor to show (signed up by a one-time code, no password, no TOTP)
      // cannot step up; refusing it would lock it out of these actions for good.
      if (methods.length > 0) await requireStepUp(deps, session, methods);
    },
  };
}

/** The ways a session of this account can step up: its password if it has one, TOTP when it is on. */
async function stepUpMethods(runtime: Runtime, uid: string): Promise<StepUpMethod[]> {
  const [user, factors] = await Promise.all([runtime.accounts.findByUid(uid), secondFactorStatus(runtime.secondFactors, uid)]);
  return [...(user?.passwordHash != null ? ['password' as const] : []), ...(factors.totp ? ['totp' as const] : [])];
}
