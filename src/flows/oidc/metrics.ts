/** SSO's Prometheus series, in the app's registry; every label value starts at 0 so alerts see it. */
import { Counter, type Registry } from 'prom-client';

export const CALLBACK_RESULTS = [
  'ok', 'state_invalid', 'idp_error', 'token_fail', 'idp_unavailable', 'no_account', 'account_disabled', 'store_fail', 'other_fail',
  'return_to_refused',
] as const;
export const LOGOUT_RESULTS = ['ok', 'token_fail', 'idp_revoke_fail'] as const;
export const BACKCHANNEL_RESULTS = ['ok', 'replay', 'invalid'] as const;
export const SYNC_TICK_RESULTS = ['ran', 'tick_taken', 'busy', 'lock_error'] as const;
export const SYNC_TOKEN_RESULTS = ['ok', 'invalid_grant', 'session_over', 'transient', 'undecryptable'] as const;

export function createOidcMetrics(registry: Registry) {
  const counter = <L extends string>(name: string, help: string, values: readonly L[]) => {
    const made = new Counter({ name, help, labelNames: ['result'] as const, registers: [registry] });
    for (const result of values) made.inc({ result }, 0);
    return { inc: (result: L) => made.inc({ result }) };
  };
  return {
    callback: counter('latchkey_oidc_callback_total', 'SSO callbacks by result', CALLBACK_RESULTS),
    // One increment per failed step: a logout whose session store and IdP both failed counts twice.
    logout: counter('latchkey_oidc_logout_total', 'SSO logouts: ok, or each step that failed', LOGOUT_RESULTS),
    backchannel: counter('latchkey_oidc_backchannel_total', 'Back-channel logout tokens by result', BACKCHANNEL_RESULTS),
    syncTick: counter('latchkey_oidc_sync_tick_total', 'Sync worker ticks: ran here, or left to another node', SYNC_TICK_RESULTS),
    syncToken: counter('latchkey_oidc_sync_token_total', 'Refresh tokens the sync worker handled, by result', SYNC_TOKEN_RESULTS),
  };
}

export type OidcMetrics = ReturnType<typeof createOidcMetrics>;
