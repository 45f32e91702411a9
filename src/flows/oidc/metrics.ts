/** SSO's Prometheus series, in the app's registry; every label value starts at 0 so alerts see it. */
import { Counter, type Registry } from 'prom-client';

export const CALLBACK_RESULTS = [
  'ok', 'state_invalid', 'idp_error', 'token_fail', 'idp_unavailable', 'no_account', 'account_disabled', 'store_fail', 'other_fail',
  'return_to_refused',
] as const;
export const LOGOUT_RESULTS = ['ok', 'token_fail', 'idp_revoke_fail'] as const;
export const BACKCHANNEL_RESULTS = ['ok', 'replay', 'invalid', 'rate_limited'] as const;
/** Why a logout_token was refused: a metric, not an audit row, so an outsider writes nothing. */
export const BACKCHANNEL_INVALID_REASONS = ['signature', 'expired', 'claims', 'malformed'] as const;
export const EXCHANGE_RESULTS = ['ok', 'not_found', 'binding_mismatch', 'used', 'idp_logged_out'] as const;
export const SYNC_TICK_RESULTS = ['ran', 'tick_taken', 'busy', 'lock_error'] as const;
export const SYNC_TOKEN_RESULTS = ['ok', 'invalid_grant', 'session_over', 'transient', 'undecryptable'] as const;

export function createOidcMetrics(registry: Registry) {
  const counter = <L extends string>(name: string, help: string, values: readonly L[], label: 'result' | 'reason' = 'result') => {
    const made = new Counter({ name, help, labelNames: [label], registers: [registry] });
    for (const value of values) made.inc({ [label]: value }, 0);
    return { inc: (value: L) => made.inc({ [label]: value }) };
  };
  return {
    callback: counter('latchkey_oidc_callback_total', 'SSO callbacks by result', CALLBACK_RESULTS),
    // One increment per failed step: a logout whose session store and IdP both failed counts twice.
    logout: counter('latchkey_oidc_logout_total', 'SSO logouts: ok, or each step that failed', LOGOUT_RESULTS),
    backchannel: counter('latchkey_oidc_backchannel_total', 'Back-channel logout tokens by result', BACKCHANNEL_RESULTS),
    backchannelInvalid: counter(
      'latchkey_oidc_backchannel_invalid_total', 'Refused back-channel logout tokens by reason', BACKCHANNEL_INVALID_REASONS, 'reason',
    ),
    exchange: counter('latchkey_oidc_exchange_total', 'SSO handoff exchanges by result', EXCHANGE_RESULTS),
    syncTick: counter('latchkey_oidc_sync_tick_total', 'Sync worker ticks: ran here, or left to another node', SYNC_TICK_RESULTS),
    syncToken: counter('latchkey_oidc_sync_token_total', 'Refresh tokens the sync worker handled, by result', SYNC_TOKEN_RESULTS),
  };
}

export type OidcMetrics = ReturnType<typeof createOidcMetrics>;
