/**
 * Opens the account database named by a URL — `sqlite:<path>` (embedded default, `sqlite::memory:`
 * for tests) or `postgres://…` — and brings its schema up to date before anyone uses it.
 */
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import { Migrator } from 'kysely/migration';
import pg from 'pg';
import { StoreUnavailableError } from '../../ports/errors.ts';
import { kyselyNodeSqlite, MEMORY_PATH, openNodeSqlite } from '../sqlite/kysely-node-sqlite.ts';
import { KyselyAccountRepo } from './account-repo.ts';
import { translateDbError } from './db-errors.ts';
import { accountMigrations, type SqlDialect } from './migrations.ts';
import type { Database } from './schema.ts';

export interface AccountStore {
  readonly repo: KyselyAccountRepo;
  readonly db: Kysely<Database>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Errors of idle PostgreSQL connections (server restart, network cut), for logging. */
  readonly onConnectionError?: (error: Error) => void;
}

export async function openAccountStore(url: string, options: OpenOptions = {}): Promise<AccountStore> {
  const { db, dialect } = connect(url, options);
  try {
    await migrateToLatest(db, dialect);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return { repo: new KyselyAccountRepo(db), db, close: () => db.destroy() };
}

/** `latchkey migrate`: applies pending migrations and returns their names. */
export async function migrate(url: string): Promise<string[]> {
  const { db, dialect } = connect(url, {});
  try {
    return await migrateToLatest(db, dialect);
  } finally {
    await db.destroy();
  }
}

function connect(url: string, options: OpenOptions): { db: Kysely<Database>; dialect: SqlDialect } {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path === '') throw new Error('account database URL sqlite: needs a path, e.g. sqlite:data/latchkey.db');
    const database = kyselyNodeSqlite(openNodeSqlite(path === MEMORY_PATH ? MEMORY_PATH : path));
    return { db: new Kysely<Database>({ dialect: new SqliteDialect({ database }) }), dialect: 'sqlite' };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    return { db: new Kysely<Database>({ dialect: new PostgresDialect({ pool: postgresPool(url, options) }) }), dialect: 'postgres' };
  }
  // Only the scheme is echoed: the rest of a URL may hold a password.
  throw new Error(`unsupported account database URL scheme "${url.split(':')[0]}": use sqlite:<path> or postgres://`);
}

const INT8_OID = 20;

function postgresPool(url: string, options: OpenOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    connectionTimeoutMillis: 2000,
    // The server cancels a stuck statement first (the connection stays usable); query_timeout is the
    // client's backstop for a server that stopped answering at all.
    statement_timeout: 4500,
    query_timeout: 5000,
    types: {
      // bigint columns (epoch ms, audit ids, counts) come back as numbers, as they do from SQLite;
      // every value we store fits in 2^53.
      getTypeParser: (oid, format) => (oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format)),
    },
  });
  // Without a listener, an idle client's error (server restart, network cut) is an uncaught
  // 'error' event that kills the process. The pool drops that client; the next query reconnects.
  pool.on('error', (error) => options.onConnectionError?.(error));
  // The pool listens only to idle clients. A client checked out (between acquiring it and its first
  // query, between a query and its release, in a transaction) whose server goes away emits 'error'
  // with nobody listening, and that kills the process. Its query fails by itself and the broken
  // client is dropped when released, so the event needs only a listener.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

async function migrateToLatest(db: Kysely<Database>, dialect: SqlDialect): Promise<string[]> {
  const migrator = new Migrator({ db, provider: accountMigrations(dialect) });
  const { error, results = [] } = await migrator.migrateToLatest();
  if (error === undefined) return results.filter((r) => r.status === 'Success').map((r) => r.migrationName);
  const reason = error instanceof Error ? error.message : String(error);
  if (translateDbError(error) instanceof StoreUnavailableError) {
    throw new StoreUnavailableError(`account database unreachable while migrating: ${reason}`, { cause: error });
  }
  const failed = results.find((r) => r.status === 'Error');
  const step = failed ? ` ${failed.migrationName}` : '';
  throw new Error(`account database migration${step} failed: ${reason}`, { cause: error });
}
