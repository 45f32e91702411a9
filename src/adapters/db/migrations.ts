/**
 * The account database's schema history, in code (no migration folder to ship or find at run time).
 * Written with Kysely's schema builder so the same steps run on SQLite and PostgreSQL; where the two
 * differ (auto-increment ids) the step asks which dialect it runs on. Never edit a released step:
 * add the next one.
 */
import { sql, type Kysely } from 'kysely';
import type { Migration, MigrationProvider } from 'kysely/migration';
import { USERS_EMAIL_UNIQUE, USERS_PHONE_UNIQUE, USERS_USERNAME_UNIQUE } from './schema.ts';

export type SqlDialect = 'sqlite' | 'postgres';

export function accountMigrations(dialect: SqlDialect): MigrationProvider {
  const migrations: Record<string, Migration> = {
    '0001_accounts': accounts,
    '0002_devices': devices,
    '0003_audit_events': auditEvents(dialect),
    '0004_oidc_identities': oidcIdentities,
  };
  return { getMigrations: async () => migrations };
}

const accounts: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('users')
      .addColumn('uid', 'text', (c) => c.primaryKey())
      .addColumn('username', 'text', (c) => c.notNull())
      .addColumn('username_lower', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('email', 'text')
      .addColumn('email_lower', 'text')
      .addColumn('zone', 'text')
      .addColumn('phone', 'text')
      .addColumn('password_hash', 'text')
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      // Case-insensitive uniqueness through lower-cased copies: portable, unlike citext or COLLATE NOCASE.
      .addUniqueConstraint(USERS_USERNAME_UNIQUE, ['username_lower'])
      .addUniqueConstraint(USERS_EMAIL_UNIQUE, ['email_lower'])
      // Both databases treat NULLs as distinct here, so users without a phone never collide.
      .addUniqueConstraint(USERS_PHONE_UNIQUE, ['zone', 'phone'])
      .addCheckConstraint('users_role_check', sql`role in ('user', 'admin')`)
      .addCheckConstraint('users_status_check', sql`status in ('active', 'banned')`)
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('users').execute();
  },
};

const devices: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('devices')
      .addColumn('uid', 'text', (c) => c.notNull())
      .addColumn('device_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('model', 'text', (c) => c.notNull())
      .addColumn('last_login_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('devices_pkey', ['uid', 'device_id'])
      .addForeignKeyConstraint('devices_uid_fkey', ['uid'], 'users', ['uid'], (fk) => fk.onDelete('cascade'))
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('devices').execute();
  },
};

/**
 * No foreign key on uid: the audit log must keep failed attempts for unknown users and outlive
 * deleted accounts.
 */
function auditEvents(dialect: SqlDialect): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('audit_events')
        // Ids only grow (AUTOINCREMENT never reuses a pruned id), so `beforeId` paging is stable.
        .addColumn('id', dialect === 'postgres' ? 'bigserial' : 'integer', (c) =>
          dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('uid', 'text')
        .addColumn('sid', 'text')
        .addColumn('ip', 'text')
        .addColumn('user_agent', 'text')
        .addColumn('result', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addCheckConstraint('audit_events_result_check', sql`result in ('ok', 'fail')`)
        .execute();
      await db.schema.createIndex('audit_events_uid_id_idx').on('audit_events').columns(['uid', 'id']).execute();
      await db.schema.createIndex('audit_events_type_id_idx').on('audit_events').columns(['type', 'id']).execute();
      // Pruning deletes by age.
      await db.schema.createIndex('audit_events_at_idx').on('audit_events').column('at').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('audit_events').execute();
    },
  };
}

/**
 * OpenID identities and the IdP refresh tokens held for them. The unique (issuer, subject) key is
 * what makes two concurrent first logins of one person end in one account (octo-server §7.17).
 */
const oidcIdentities: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('oidc_identities')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('issuer', 'text', (c) => c.notNull())
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('uid', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addUniqueConstraint('oidc_identities_issuer_subject_unique', ['issuer', 'subject'])
      .addForeignKeyConstraint('oidc_identities_uid_fkey', ['uid'], 'users', ['uid'], (fk) => fk.onDelete('cascade'))
      .execute();
    await db.schema.createIndex('oidc_identities_uid_idx').on('oidc_identities').column('uid').execute();
    await db.schema
      .createTable('oidc_refresh_tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('identity_id', 'text', (c) => c.notNull())
      .addColumn('provider', 'text', (c) => c.notNull())
      .addColumn('sid', 'text', (c) => c.notNull())
      .addColumn('sealed', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('refreshed_at', 'bigint', (c) => c.notNull())
      .addForeignKeyConstraint('oidc_refresh_tokens_identity_fkey', ['identity_id'], 'oidc_identities', ['id'], (fk) => fk.onDelete('cascade'))
      .execute();
    await db.schema.createIndex('oidc_refresh_tokens_refreshed_idx').on('oidc_refresh_tokens').columns(['refreshed_at', 'id']).execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('oidc_refresh_tokens').execute();
    await db.schema.dropTable('oidc_identities').execute();
  },
};
