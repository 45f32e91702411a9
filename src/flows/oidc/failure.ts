/**
 * Why an SSO callback failed: `reason` (precise, for the audit log and metrics) and `code` (coarse,
 * what the browser sees as `oidc_error`, so a page learns nothing it could probe with).
 */
import type { CALLBACK_RESULTS } from './metrics.ts';

export type SsoErrorCode =
  | 'access_denied' | 'login_failed' | 'idp_unavailable' | 'account_not_found' | 'account_disabled' | 'server_error';

export class SsoFailure extends Error {
  readonly code: SsoErrorCode;
  readonly result: (typeof CALLBACK_RESULTS)[number];
  readonly uid: string | null;

  constructor(failure: { code: SsoErrorCode; result: (typeof CALLBACK_RESULTS)[number]; reason: string; uid?: string | null }) {
    super(failure.reason);
    this.name = 'SsoFailure';
    this.code = failure.code;
    this.result = failure.result;
    this.uid = failure.uid ?? null;
  }
}

/** fetch could not reach the IdP or it did not answer in time (as opposed to an answer we refuse). */
export function isNetworkError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'TimeoutError' || error.name === 'AbortError') return true;
  return error instanceof TypeError && error.message === 'fetch failed';
}
