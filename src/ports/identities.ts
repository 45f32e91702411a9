/**
 * IdentityRepo: who a user is at an OpenID provider — (issuer, sub) → uid — and the IdP refresh
 * tokens latchkey holds for them, stored sealed (the flow encrypts; the store never sees plaintext).
 * Behind Kysely on SQLite or PostgreSQL, in the account database.
 */
import type { NewUser, User } from './accounts.ts';
import type { DomainEvent } from './events.ts';

export interface Identity {
  /** Random, stable: the AAD that binds a sealed refresh token to this row. */
  readonly id: string;
  readonly issuer: string;
  readonly subject: string;
  readonly uid: string;
  readonly createdAt: number;
}

export interface NewIdentity {
  readonly id: string;
  readonly issuer: string;
  readonly subject: string;
  readonly uid: string;
}

export interface StoredRefreshToken {
  readonly id: string;
  readonly identityId: string;
  /** The provider (client) the token was issued to; several providers may share one issuer. */
  readonly provider: string;
  /** The latchkey session it came with: once that session is over, the token is revoked and dropped. */
  readonly sid: string;
  /** `v1.<key id>.<iv>.<ciphertext>` (token-cipher.ts). */
  readonly sealed: string;
  readonly createdAt: number;
  readonly refreshedAt: number;
}

/** (issuer, subject) is already linked: someone else's concurrent first login won. */
export class IdentityTaken extends Error {
  constructor() {
    super('identity already linked');
    this.name = 'IdentityTaken';
  }
}

export interface IdentityRepo {
  findBySubject(issuer: string, subject: string): Promise<Identity | null>;
  findById(id: string): Promise<Identity | null>;
  /** Links an existing account. Throws IdentityTaken when (issuer, subject) is linked already. */
  link(identity: NewIdentity, now: number): Promise<Identity>;
  /**
   * Creates the account and its identity in one transaction: when (issuer, subject) is taken the
   * account is not created either (IdentityTaken), so a lost race leaves no ghost user. Throws
   * UniqueViolation when the user's username, email or phone is taken. `events` go to the webhook
   * outbox in the same transaction (docs/design.md §3.6).
   */
  createWithAccount(user: NewUser, identity: NewIdentity, now: number, events?: readonly DomainEvent[]): Promise<{ user: User; identity: Identity }>;

  saveRefreshToken(token: Omit<StoredRefreshToken, 'refreshedAt'>): Promise<void>;
  findRefreshToken(id: string): Promise<StoredRefreshToken | null>;
  /** Oldest-refreshed first, for the sync worker. */
  listRefreshTokens(limit: number): Promise<StoredRefreshToken[]>;
  /** Compare-and-set: replaces the sealed token only if it is still `expected`. */
  replaceRefreshToken(id: string, expected: string, next: string, now: number): Promise<boolean>;
  /** True for the one caller that deleted it (and so owns revoking what it stood for). */
  deleteRefreshToken(id: string): Promise<boolean>;
}
