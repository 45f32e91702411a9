/**
 * Lets Kysely's SqliteDialect drive Node's built-in `node:sqlite`, so the embedded store needs no
 * native add-on. Kysely expects better-sqlite3's statement shape (params as one array, a `reader`
 * flag); node:sqlite takes spread params and tells readers apart by their result columns.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import type { SqliteDatabase, SqliteStatement } from 'kysely';
import { holdCheckpoints, releaseCheckpoints } from './checkpointer.ts';

export const MEMORY_PATH = ':memory:';

/**
 * Opens (creating the file and its folder if needed) a database tuned for a server:
 * WAL lets readers run beside the one writer; synchronous=NORMAL is durable across process crashes
 * in WAL mode and only risks the last commits on power loss; busy_timeout makes a second process
 * (or the Kv adapter's own connection) wait for the write lock instead of failing at once.
 * Its WAL checkpoints run on a worker thread (checkpointer.ts), released by the Kysely wrapper's close.
 */
export function openNodeSqlite(path: string): DatabaseSync {
  if (path !== MEMORY_PATH) mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = NORMAL');
  db.exec('PRAGMA busy_timeout = 5000');
  db.exec('PRAGMA foreign_keys = ON');
  holdCheckpoints(path, db);
  return db;
}

const MAX_CACHED_STATEMENTS = 512;

/**
 * Wraps a DatabaseSync into the `database` Kysely's SqliteDialect takes. Statements are prepared
 * once per SQL text: re-preparing the lookup behind every validated request cost a fifth of its
 * time. Reuse is safe because latchkey never streams (iterate) a query while running another.
 */
export function kyselyNodeSqlite(db: DatabaseSync): SqliteDatabase {
  const prepared = new Map<string, SqliteStatement>();
  return {
    close: () => {
      prepared.clear();
      releaseCheckpoints(db);
      db.close();
    },
    prepare: (sql) => {
      let statement = prepared.get(sql);
      if (statement === undefined) {
        if (prepared.size >= MAX_CACHED_STATEMENTS) prepared.clear();
        statement = wrapStatement(db.prepare(sql));
        prepared.set(sql, statement);
      }
      return statement;
    },
  };
}

function wrapStatement(statement: StatementSync): SqliteStatement {
  return {
    // A statement that yields columns (SELECT, or anything with RETURNING) must be read with all().
    reader: statement.columns().length > 0,
    all: (params) => statement.all(...toSqlValues(params)),
    run: (params) => statement.run(...toSqlValues(params)),
    iterate: (params) => statement.iterate(...toSqlValues(params)),
  };
}

function toSqlValues(params: ReadonlyArray<unknown>): SQLInputValue[] {
  return params.map(toSqlValue);
}

function toSqlValue(value: unknown): SQLInputValue {
  if (value === null || typeof value === 'number' || typeof value === 'bigint' || typeof value === 'string') {
    return value;
  }
  // SQLite has no boolean type; better-sqlite3 (which Kysely's dialect was written for) stores 0/1.
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value === undefined) return null;
  if (value instanceof Uint8Array) return value;
  throw new TypeError(`node:sqlite cannot bind a parameter of type ${typeof value}`);
}
