/**
 * Every `oidc.sync_interval` the IdP refresh tokens latchkey holds are refreshed. An IdP answers
 * `invalid_grant` when the user was disabled or logged out there: that user's sessions from that
 * identity end here too (octo-server designed this, but never stored a token, docs/octo-server.md §8.22).
 *
 * Ticks are aligned to the interval, so every node's timer names the same tick; the node whose
 * SET NX of `oidc:sync:tick:<n>` lands processes it, the others skip. A second lock, released by
 * compare-and-delete, keeps a slow run from overlapping the next tick's.
 */
import * as client from 'openid-client';
import type { OidcDeps } from './deps.ts';
import type { StoredRefreshToken } from '../../ports/identities.ts';
import { refreshTokenAad } from './token-cipher.ts';
import { endIdentitySessions } from './session-links.ts';
import { sessionKey } from '../../core/sessions/keys.ts';

const BATCH = 500;
const RUN_LOCK = 'oidc:sync:running';
const tickKey = (tick: number): string => `oidc:sync:tick:${tick}`;

export type TickOutcome = 'ran' | 'tick_taken' | 'busy' | 'lock_error';

export class SyncWorker {
  readonly #deps: OidcDeps;
  readonly #intervalMs: number;
  readonly #scheduled: boolean;
  readonly #node: string;
  #timer: NodeJS.Timeout | null = null;
  #stopped = true;
  /** Set by stop(): a run in progress stops after its current token (shutdown). */
  #closing = false;

  /** `scheduled` false: ticks run only when called (sync_interval 0, and tests). */
  constructor(deps: OidcDeps, intervalMs: number, scheduled: boolean) {
    this.#deps = deps;
    this.#intervalMs = intervalMs;
    this.#scheduled = scheduled;
    this.#node = deps.random.bytes(16).toString('base64url');
  }

  start(): void {
    if (!this.#scheduled || !this.#stopped) return;
    this.#stopped = false;
    this.#closing = false;
    this.#scheduleNext();
  }

  stop(): void {
    this.#stopped = true;
    this.#closing = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** The tick a time falls in: the same number on every node. */
  tickAt(now: number): number {
    return Math.floor(now / this.#intervalMs);
  }

  /** Claims tick `tick` for this node and, if it got it, refreshes every stored token. */
  async runTick(tick: number): Promise<TickOutcome> {
    const { kv, oidcMetrics } = this.#deps;
    let outcome: TickOutcome;
    try {
      if (!(await kv.set(tickKey(tick), this.#node, { nx: true, ttlMs: 2 * this.#intervalMs }))) outcome = 'tick_taken';
      else if (!(await kv.set(RUN_LOCK, this.#node, { nx: true, ttlMs: this.#intervalMs }))) outcome = 'busy';
      else outcome = 'ran';
    } catch (error) {
      this.#deps.log.warn({ err: error }, 'oidc sync could not take its lock; skipping this tick');
      outcome = 'lock_error';
    }
    oidcMetrics.syncTick.inc(outcome);
    if (outcome !== 'ran') return outcome;
    try {
      await this.#refreshAll();
    } finally {
      // Only our own lock: one that expired and was taken by another node is left alone.
      await kv.compareAndDelete(RUN_LOCK, this.#node).catch(() => undefined);
    }
    return outcome;
  }

  async #refreshAll(): Promise<void> {
    const tokens = await this.#deps.identities.listRefreshTokens(BATCH);
    for (const token of tokens) {
      if (this.#closing) break;
      await this.#refreshOne(token).catch((error: unknown) => {
        this.#deps.oidcMetrics.syncToken.inc('transient');
        this.#deps.log.warn({ err: error, provider: token.provider }, 'oidc sync: token not refreshed');
      });
    }
  }

  async #refreshOne(stored: StoredRefreshToken): Promise<void> {
    const { cipher, identities, directory, oidcMetrics, clock } = this.#deps;
    const token = cipher.open(stored.sealed, refreshTokenAad(stored.identityId, stored.id));
    if (token === null) {
      // A key removed from config or a row that was tampered with: nothing here can use it.
      await identities.deleteRefreshToken(stored.id);
      oidcMetrics.syncToken.inc('undecryptable');
      await this.#audit(null, 'undecryptable', stored.provider);
      return;
    }
    const provider = await directory.get(stored.provider);
    if ((await this.#deps.kv.get(sessionKey(stored.sid))) === null) {
      // Its session ended some other way (quit, revoke, expiry): nobody needs the grant any more, and
      // its eventual invalid_grant must not end the user's newer sessions.
      if (await identities.deleteRefreshToken(stored.id)) {
        await client.tokenRevocation(provider.client, token, { token_type_hint: 'refresh_token' }).catch(() => undefined);
      }
      oidcMetrics.syncToken.inc('session_over');
      return;
    }
    try {
      const refreshed = await client.refreshTokenGrant(provider.client, token);
      const next = refreshed.refresh_token;
      const sealed = next === undefined || next === token ? stored.sealed : cipher.seal(next, refreshTokenAad(stored.identityId, stored.id));
      await identities.replaceRefreshToken(stored.id, stored.sealed, sealed, clock.now());
      oidcMetrics.syncToken.inc('ok');
    } catch (error) {
      if (!(error instanceof client.ResponseBodyError && error.error === 'invalid_grant')) throw error;
      await this.#endIdentity(stored);
    }
  }

  /** The IdP refused the grant: the one node that deletes the token ends the identity's sessions. */
  async #endIdentity(stored: StoredRefreshToken): Promise<void> {
    const { identities, kv, sessions, clock, oidcMetrics } = this.#deps;
    if (!(await identities.deleteRefreshToken(stored.id))) return;
    const identity = await identities.findById(stored.identityId);
    oidcMetrics.syncToken.inc('invalid_grant');
    if (identity === null) return;
    const ended = await endIdentitySessions(kv, sessions, identity.uid, identity.id, clock.now(), false);
    await this.#audit(identity.uid, `invalid_grant:${ended}`, stored.provider);
  }

  #audit(uid: string | null, reason: string, provider: string): Promise<void> {
    return this.#deps.audit.record({ type: 'oidc_sync', uid, sid: null, result: 'ok', reason: `${provider}:${reason}` });
  }

  #scheduleNext(): void {
    if (this.#stopped) return;
    const now = this.#deps.clock.now();
    const next = (this.tickAt(now) + 1) * this.#intervalMs;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.runTick(this.tickAt(next)).catch((error: unknown) => {
        this.#deps.log.warn({ err: error }, 'oidc sync tick failed');
      }).finally(() => this.#scheduleNext());
    }, next - now);
    this.#timer.unref();
  }
}
