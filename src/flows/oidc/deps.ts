import type { StartSessionDeps } from '../start-session.ts';
import type { OctoMirror } from '../../core/sessions/octo-mirror.ts';
import type { Kv } from '../../ports/kv.ts';
import type { IdentityRepo } from '../../ports/identities.ts';
import type { OidcConfig } from '../../config/oidc.ts';
import type { PasswordFlowDeps } from '../password/password-flow.ts';
import type { ProviderDirectory } from './discovery.ts';
import type { TokenCipher } from './token-cipher.ts';
import type { OidcMetrics } from './metrics.ts';
import type { BindingCookies } from './binding.ts';

export interface OidcLogger {
  info(object: Record<string, unknown>, message: string): void;
  warn(object: Record<string, unknown>, message: string): void;
}

/** What the SSO flows need (the runtime's `oidc` part provides it). */
export interface OidcDeps extends Pick<PasswordFlowDeps, 'sessions' | 'accounts' | 'events' | 'audit' | 'metrics' | 'clock' | 'random'> {
  readonly kv: Kv;
  /** Told of a device new to the account at login (src/flows/alerts/). */
  readonly alerts?: StartSessionDeps['alerts'];
  readonly identities: IdentityRepo;
  readonly cipher: TokenCipher;
  readonly bindingCookies: BindingCookies;
  readonly directory: ProviderDirectory;
  readonly oidcMetrics: OidcMetrics;
  readonly oidcConfig: OidcConfig;
  readonly sessionTtlMs: number;
  readonly log: OidcLogger;
  /** octo-server's Redis, kept in step with the sessions (start-session.ts); absent: none. */
  readonly octoMirror?: OctoMirror | null;
}
