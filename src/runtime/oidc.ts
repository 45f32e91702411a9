/**
 * The SSO part of the runtime: identity store, token cipher, provider directory, metrics and the
 * sync worker. Discovery and the worker start with `start()` (the HTTP server calls it), so CLI
 * commands that build a runtime never reach out to an IdP.
 */
import type { Config } from '../config/config.ts';
import type { Registry } from 'prom-client';
import type { OidcDeps, OidcLogger } from '../flows/oidc/deps.ts';
import { ProviderDirectory, type Discover } from '../flows/oidc/discovery.ts';
import { TokenCipher } from '../flows/oidc/token-cipher.ts';
import { BindingCookies } from '../flows/oidc/binding.ts';
import { createOidcMetrics } from '../flows/oidc/metrics.ts';
import { SyncWorker } from '../flows/oidc/sync-worker.ts';
import { forgetSession } from '../flows/oidc/session-links.ts';
import type { Session } from '../core/sessions/record.ts';

export interface OidcParts extends Omit<OidcDeps, 'cipher' | 'bindingCookies' | 'directory' | 'oidcMetrics' | 'oidcConfig' | 'sessionTtlMs' | 'log'> {
  readonly registry: Registry;
  readonly discover?: Discover;
}

export interface Oidc extends OidcDeps {
  readonly syncWorker: SyncWorker;
  /** Told of every session that ended (SessionService's onEnded): an SSO session's link goes with it. */
  sessionEnded(session: Session): Promise<void>;
  start(): void;
  close(): void;
}

export function createOidc(config: Pick<Config, 'oidc' | 'sessionTtlSeconds'>, parts: OidcParts, log: OidcLogger): Oidc {
  const { registry, discover, ...shared } = parts;
  const directory = new ProviderDirectory(config.oidc.providers, {
    refreshMs: config.oidc.discoveryRefreshSeconds * 1000,
    log,
    ...(discover === undefined ? {} : { discover }),
  });
  const deps: OidcDeps = {
    ...shared,
    cipher: new TokenCipher(config.oidc.tokenKeys, shared.random),
    bindingCookies: new BindingCookies(config.oidc.tokenKeys, shared.clock, shared.random),
    directory,
    oidcMetrics: createOidcMetrics(registry),
    oidcConfig: config.oidc,
    sessionTtlMs: config.sessionTtlSeconds * 1000,
    log,
  };
  const { syncIntervalSeconds } = config.oidc;
  const syncWorker = new SyncWorker(deps, (syncIntervalSeconds === 0 ? 900 : syncIntervalSeconds) * 1000, syncIntervalSeconds > 0);
  const enabled = directory.providers.length > 0;
  return {
    ...deps,
    syncWorker,
    async sessionEnded(session) {
      if (session.method !== 'oidc') return;
      // Never fails the call that ended the session; a link left here is pruned at the next SSO login.
      await forgetSession(deps.kv, session.sid).catch((error: unknown) => {
        log.warn({ err: error }, 'oidc: could not unlink an ended session');
      });
    },
    start() {
      if (!enabled) return;
      directory.start();
      syncWorker.start();
    },
    close() {
      syncWorker.stop();
      directory.close();
    },
  };
}
