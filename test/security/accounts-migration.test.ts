/**
 * The migrations that bring an existing account database under the new rules: which stored
 * addresses count as proven, usernames re-keyed by NFKC + case fold and emails by NFC + lower-case — on SQLite and PostgreSQL.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import { Migrator } from 'kysely/migration';
import pg from 'pg';
import { accountMigrations, type SqlDialect } from '../../src/adapters/db/migrations.ts';
import { openAccountStore } from '../../src/adapters/db/open.ts';
import { importOctoUsers } from '../../src/ops/import-octo.ts';
import type { PasswordHasher } from '../../src/ports/password-hasher.ts';
import type { OctoUserRow } from '../../src/adapters/octo-mysql/octo-user-source.ts';
import { kyselyNodeSqlite, openNodeSqlite } from '../../src/adapters/sqlite/kysely-node-sqlite.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { skipUnless } from '../support/services.ts';

interface OldUser {
  uid: string;
  username: string;
  email?: string;
  zone?: string;
  phone?: string;
  password_hash: string | null;
  created_at: number;
}

/** An account database as the release before these migrations left it. */
async function seedOldDatabase(db: Kysely<unknown>, dialect: SqlDialect): Promise<void> {
  const migrated = await new Migrator({ db, provider: accountMigrations(dialect) }).migrateTo('0004_oidc_identities');
  assert.equal(migrated.error, undefined);
  const users: OldUser[] = [
    { uid: 'a1', username: 'registrant', email: 'claimed@example.test', password_hash: 'h', created_at: 1 },
    { uid: 'a2', username: 'u0123456789abcdef', email: 'coded@example.test', password_hash: null, created_at: 2 },
    { uid: 'a3', username: 'emailcoder', email: 'proved@example.test', password_hash: 'h', created_at: 3 },
    { uid: 'a4', username: 'phonecoder', zone: '86', phone: '13700000001', password_hash: 'h', created_at: 4 },
    { uid: 'a5', username: 'both', email: 'both@example.test', zone: '86', phone: '13700000002', password_hash: 'h', created_at: 5 },
    { uid: 'a6', username: 'alice', password_hash: 'h', created_at: 6 },
    { uid: 'a7', username: 'ａｌｉｃｅ', password_hash: 'h', created_at: 7 },
    { uid: 'a8', username: 'ＢＯＢ', password_hash: 'h', created_at: 8 },
    { uid: 'a9', username: 'renee', email: 'Rene\u0301e@example.test', password_hash: 'h', created_at: 9 },
  ];
  for (const user of users) {
    await sql`insert into users (uid, username, username_lower, name, email, email_lower, zone, phone, password_hash, role, status, created_at, updated_at)
      values (${user.uid}, ${user.username}, ${user.username.toLowerCase()}, ${user.username}, ${user.email ?? null}, ${user.email?.toLowerCase() ?? null},
        ${user.zone ?? null}, ${user.phone ?? null}, ${user.password_hash}, 'user', 'active', ${user.created_at}, ${user.created_at})`.execute(db);
  }
  // a3 and a4 signed in with a code once; a5 did too, but with two addresses nobody knows which.
  for (const uid of ['a3', 'a4', 'a5']) {
    await sql`insert into audit_events (type, uid, result, reason, at) values ('login', ${uid}, 'ok', 'code', 10)`.execute(db);
  }
}

async function checkMigrated(url: string): Promise<void> {
  const store = await openAccountStore(url);
  try {
    const { repo } = store;
    const user = async (uid: string) => {
      const found = await repo.findByUid(uid);
      assert.ok(found !== null, uid);
      return found;
    };
    assert.equal((await user('a1')).emailVerified, false, 'an email typed at registration stays a claim');
    assert.equal((await user('a2')).emailVerified, true, 'a passwordless account was made by a code or SSO login');
    assert.equal((await user('a3')).emailVerified, true, 'a code login proved the only address');
    assert.equal((await user('a4')).phoneVerified, true);
    assert.equal((await user('a5')).emailVerified, false, 'two addresses: the trail does not say which was proven');
    assert.equal((await user('a5')).phoneVerified, false);

    assert.equal((await repo.findByUsername('ａｌｉｃｅ'))?.uid, 'a6', 'the account already keyed `alice` keeps the name');
    assert.equal((await repo.findByUsername('ALICE'))?.uid, 'a6');
    assert.equal((await repo.findByUsername('bob'))?.uid, 'a8', 'a fullwidth name is found by its plain spelling');
    assert.equal((await repo.findByEmail('ren\u00e9e@example.test'))?.uid, 'a9', 'an email stored decomposed is found composed');
  } finally {
    await store.close();
  }
}

describe('migrating an existing account database', () => {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-migration-'));
  let database: TestDatabase | undefined;
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await database?.drop();
  });

  it('SQLite: proven addresses and NFKC username keys', async () => {
    const path = join(dir, 'old.db');
    const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: kyselyNodeSqlite(openNodeSqlite(path)) }) });
    await seedOldDatabase(db, 'sqlite');
    await db.destroy();
    await checkMigrated(`sqlite:${path}`);
  });

  it('PostgreSQL: proven addresses and NFKC username keys', async (t) => {
    const skip = await skipUnless('postgres');
    if (skip !== false) {
      t.skip(skip);
      return;
    }
    database = await createTestDatabase();
    const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: database.url }) }) });
    await seedOldDatabase(db, 'postgres');
    await db.destroy();
    await checkMigrated(database.url);
  });
});

describe('importing from octo-server', () => {
  it('phones arrive proven (octo-server registered them by SMS code), emails as claims', async () => {
    const store = await openAccountStore('sqlite::memory:');
    try {
      const row: OctoUserRow = {
        id: 1, uid: 'octo1', username: 'ＯＣＴＯ', name: 'Octo', email: 'octo@example.test', zone: '0086', phone: '13700000009',
        password: '', status: 1, isDestroy: 0, role: '', createdAt: 1,
      };
      async function* rows() {
        yield row;
      }
      const hasher = {} as PasswordHasher; // not reached: the row has no password to wrap
      const report = await importOctoUsers({ accounts: store.repo, hasher, clock: { now: () => 2 } }, rows(), { dryRun: false });
      assert.equal(report.imported, 1);
      const user = await store.repo.findByUid('octo1');
      assert.equal(user?.phoneVerified, true);
      assert.equal(user?.emailVerified, false);
      assert.equal((await store.repo.findByUsername('octo'))?.uid, 'octo1');
    } finally {
      await store.close();
    }
  });
});
