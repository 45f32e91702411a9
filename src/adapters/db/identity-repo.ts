/**
 * IdentityRepo on Kysely, in the account database. One statement per call, except
 * createWithAccount: the user and its identity are inserted in one transaction, so the unique
 * (issuer, subject) key decides concurrent first logins and the loser's user row is rolled back.
 */
import type { Kysely, Selectable } from 'kysely';
import type { NewUser, User } from '../../ports/accounts.ts';
import type { DomainEvent } from '../../ports/events.ts';
import {
  IdentityTaken, type Identity, type IdentityRepo, type NewIdentity, type StoredRefreshToken,
} from '../../ports/identities.ts';
import { KyselyAccountRepo } from './account-repo.ts';
import { insertOutboxRows, type OutboxRows } from './outbox.ts';
import { guard as guardQuery, translateDbError } from './db-errors.ts';
import type { Database } from './schema.ts';

export interface OidcIdentitiesTable {
  id: string;
  issuer: string;
  subject: string;
  uid: string;
  created_at: number;
}

export interface OidcRefreshTokensTable {
  id: string;
  identity_id: string;
  provider: string;
  sid: string;
  sealed: string;
  created_at: number;
  refreshed_at: number;
}

// A type alias, not an interface: withTables<T>() needs T to be indexable.
type IdentityTables = {
  oidc_identities: OidcIdentitiesTable;
  oidc_refresh_tokens: OidcRefreshTokensTable;
};

const IDENTITY_UNIQUE = 'oidc_identities_issuer_subject_unique';

export class KyselyIdentityRepo implements IdentityRepo {
  readonly #accounts: Kysely<Database>;
  readonly #db: Kysely<Database & IdentityTables>;

  /** Where events passed with createWithAccount go, in its transaction (docs/design.md §3.6); null: nowhere. */
  readonly #outbox: { readonly rows: OutboxRows; readonly written: () => void } | null;

  constructor(db: Kysely<Database>, outbox: { readonly rows: OutboxRows; readonly written: () => void } | null = null) {
    this.#outbox = outbox;
    this.#accounts = db;
    this.#db = db.withTables<IdentityTables>();
  }

  async findBySubject(issuer: string, subject: string): Promise<Identity | null> {
    const row = await guard(
      this.#db.selectFrom('oidc_identities').selectAll().where('issuer', '=', issuer).where('subject', '=', subject).executeTakeFirst(),
    );
    return row === undefined ? null : toIdentity(row);
  }

  async findById(id: string): Promise<Identity | null> {
    const row = await guard(this.#db.selectFrom('oidc_identities').selectAll().where('id', '=', id).executeTakeFirst());
    return row === undefined ? null : toIdentity(row);
  }

  async link(identity: NewIdentity, now: number): Promise<Identity> {
    const row: OidcIdentitiesTable = { ...identity, created_at: now };
    await guard(this.#db.insertInto('oidc_identities').values(row).execute());
    return toIdentity(row);
  }

  async createWithAccount(user: NewUser, identity: NewIdentity, now: number, events?: readonly DomainEvent[]) {
    const row: OidcIdentitiesTable = { ...identity, created_at: now };
    const outboxRows = this.#outbox === null || events === undefined ? [] : this.#outbox.rows.rows(events);
    let result: { user: User; identity: Identity };
    try {
      result = await this.#accounts.transaction().execute(async (trx) => {
        const created = await new KyselyAccountRepo(trx).createUser(user, now);
        await trx.withTables<IdentityTables>().insertInto('oidc_identities').values(row).execute();
        await insertOutboxRows(trx, outboxRows);
        return { user: created, identity: toIdentity(row) };
      });
    } catch (error) {
      throw translate(error);
    }
    if (outboxRows.length > 0) this.#outbox?.written();
    return result;
  }

  async saveRefreshToken(token: Omit<StoredRefreshToken, 'refreshedAt'>): Promise<void> {
    await guard(
      this.#db.insertInto('oidc_refresh_tokens').values({
        id: token.id,
        identity_id: token.identityId,
        provider: token.provider,
        sid: token.sid,
        sealed: token.sealed,
        created_at: token.createdAt,
        refreshed_at: token.createdAt,
      }).execute(),
    );
  }

  async findRefreshToken(id: string): Promise<StoredRefreshToken | null> {
    const row = await guard(this.#db.selectFrom('oidc_refresh_tokens').selectAll().where('id', '=', id).executeTakeFirst());
    return row === undefined ? null : toRefreshToken(row);
  }

  async listRefreshTokens(limit: number): Promise<StoredRefreshToken[]> {
    const rows = await guard(
      this.#db.selectFrom('oidc_refresh_tokens').selectAll().orderBy('refreshed_at').orderBy('id').limit(limit).execute(),
    );
    return rows.map(toRefreshToken);
  }

  async replaceRefreshToken(id: string, expected: string, next: string, now: number): Promise<boolean> {
    const result = await guard(
      this.#db.updateTable('oidc_refresh_tokens').set({ sealed: next, refreshed_at: now })
        .where('id', '=', id).where('sealed', '=', expected).executeTakeFirst(),
    );
    return result.numUpdatedRows > 0n;
  }

  async deleteRefreshToken(id: string): Promise<boolean> {
    const result = await guard(this.#db.deleteFrom('oidc_refresh_tokens').where('id', '=', id).executeTakeFirst());
    return result.numDeletedRows > 0n;
  }
}

const guard = <T>(query: Promise<T>): Promise<T> => guardQuery(query, translate);

/** The identity key collision becomes IdentityTaken; everything else as for accounts. */
function translate(error: unknown): unknown {
  if (error instanceof Error) {
    const { code, constraint } = error as { code?: unknown; constraint?: unknown };
    if (code === '23505' && constraint === IDENTITY_UNIQUE) return new IdentityTaken();
    // SQLite names the columns: `UNIQUE constraint failed: oidc_identities.issuer, oidc_identities.subject`.
    if (code === 'ERR_SQLITE_ERROR' && error.message.includes('oidc_identities.issuer, oidc_identities.subject')) return new IdentityTaken();
  }
  return translateDbError(error);
}

function toIdentity(row: Selectable<OidcIdentitiesTable>): Identity {
  return { id: row.id, issuer: row.issuer, subject: row.subject, uid: row.uid, createdAt: row.created_at };
}

function toRefreshToken(row: Selectable<OidcRefreshTokensTable>): StoredRefreshToken {
  return {
    id: row.id,
    identityId: row.identity_id,
    provider: row.provider,
    sid: row.sid,
    sealed: row.sealed,
    createdAt: row.created_at,
    refreshedAt: row.refreshed_at,
  };
}
