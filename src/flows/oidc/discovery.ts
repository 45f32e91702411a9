/**
 * Each provider's discovered metadata and keys (openid-client `discovery`). An IdP that is down
 * when latchkey starts is retried with backoff, and asked again on demand, so it comes back without
 * a restart (octo-server needed one, docs/octo-server.md §8.24); once found, the document is refreshed
 * periodically and a failed refresh keeps the last good one.
 */
import * as client from 'openid-client';
import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose';
import type { OidcProviderConfig } from '../../config/oidc.ts';
import { LatchkeyError, notFound } from '../../core/errors.ts';

export interface DiscoveredProvider {
  readonly config: OidcProviderConfig;
  readonly client: client.Configuration;
  /** The IdP's signing keys, for back-channel logout tokens (openid-client does not verify those). */
  readonly jwks: JWTVerifyGetKey;
}

export type Discover = (config: OidcProviderConfig) => Promise<client.Configuration>;

export interface DirectoryLogger {
  info(object: Record<string, unknown>, message: string): void;
  warn(object: Record<string, unknown>, message: string): void;
}

export interface DirectoryOptions {
  readonly refreshMs: number;
  readonly log: DirectoryLogger;
  readonly discover?: Discover;
  /** First retry delay; doubles up to maxRetryMs. */
  readonly minRetryMs?: number;
  readonly maxRetryMs?: number;
}

interface Entry {
  readonly config: OidcProviderConfig;
  current: DiscoveredProvider | null;
  inFlight: Promise<DiscoveredProvider | null> | null;
  failures: number;
  timer: NodeJS.Timeout | null;
}

export const discoverWithOpenidClient: Discover = (config) =>
  client.discovery(new URL(config.issuer), config.clientId, undefined, client.ClientSecretBasic(config.clientSecret), {
    // Plain http only where config allowed it: a loopback issuer in development and tests.
    execute: config.allowInsecureHttp ? [client.allowInsecureRequests] : [],
    timeout: config.timeoutSeconds,
  });

export class ProviderDirectory {
  readonly #entries = new Map<string, Entry>();
  readonly #options: DirectoryOptions;
  readonly #discover: Discover;
  #closed = false;

  constructor(providers: readonly OidcProviderConfig[], options: DirectoryOptions) {
    this.#options = options;
    this.#discover = options.discover ?? discoverWithOpenidClient;
    for (const config of providers) {
      if (config.enabled) this.#entries.set(config.id, { config, current: null, inFlight: null, failures: 0, timer: null });
    }
  }

  /** Enabled providers, in config order. */
  get providers(): OidcProviderConfig[] {
    return [...this.#entries.values()].map((entry) => entry.config);
  }

  /** Starts discovery of every provider in the background. */
  start(): void {
    for (const entry of this.#entries.values()) void this.#attempt(entry);
  }

  /** The provider's config, or 404 for an unknown or disabled id. */
  configOf(id: string): OidcProviderConfig {
    const entry = this.#entries.get(id);
    if (entry === undefined) throw notFound('identity provider');
    return entry.config;
  }

  /** The discovered provider; tries once more now if it was never reached, else 503. */
  async get(id: string): Promise<DiscoveredProvider> {
    const entry = this.#entries.get(id);
    if (entry === undefined) throw notFound('identity provider');
    const found = entry.current ?? (await this.#attempt(entry));
    if (found === null) throw new LatchkeyError('upstream_unavailable', 'the identity provider is unreachable; try again shortly');
    return found;
  }

  close(): void {
    this.#closed = true;
    for (const entry of this.#entries.values()) if (entry.timer !== null) clearTimeout(entry.timer);
  }

  #attempt(entry: Entry): Promise<DiscoveredProvider | null> {
    entry.inFlight ??= this.#discoverOnce(entry).finally(() => {
      entry.inFlight = null;
    });
    return entry.inFlight;
  }

  async #discoverOnce(entry: Entry): Promise<DiscoveredProvider | null> {
    const { log, refreshMs, minRetryMs = 1000, maxRetryMs = 60_000 } = this.#options;
    try {
      const discovered = await this.#discover(entry.config);
      const jwksUri = discovered.serverMetadata().jwks_uri;
      const jwks = jwksUri === undefined
        ? () => Promise.reject(new Error('the IdP publishes no jwks_uri'))
        : createRemoteJWKSet(new URL(jwksUri), { timeoutDuration: entry.config.timeoutSeconds * 1000 });
      entry.current = { config: entry.config, client: discovered, jwks };
      entry.failures = 0;
      log.info({ provider: entry.config.id }, 'oidc provider discovered');
      this.#schedule(entry, refreshMs);
      return entry.current;
    } catch (error) {
      entry.failures += 1;
      const delay = Math.min(maxRetryMs, minRetryMs * 2 ** (entry.failures - 1));
      log.warn({ provider: entry.config.id, err: error, retryInMs: delay }, 'oidc discovery failed');
      this.#schedule(entry, delay);
      return entry.current;
    }
  }

  #schedule(entry: Entry, delayMs: number): void {
    if (this.#closed) return;
    if (entry.timer !== null) clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.timer = null;
      void this.#attempt(entry);
    }, delayMs);
    entry.timer.unref();
  }
}
