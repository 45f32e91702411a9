/**
 * The account database's schema history, in code (no migration folder to ship or find at run time).
 * Written with Kysely's schema builder so the same steps run on SQLite and PostgreSQL; where the two
 * differ (auto-increment ids) the step asks which dialect it runs on. Never edit a released step:
 * add the next one.
 */
import { randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Migration, MigrationProvider } from 'kysely/migration';
import { usernameKey } from '../../ports/accounts.ts';
import { USERS_EMAIL_UNIQUE, USERS_PHONE_UNIQUE, USERS_USERNAME_UNIQUE } from './schema.ts';

export type SqlDialect = 'sqlite' | 'postgres';

export function accountMigrations(dialect: SqlDialect): MigrationProvider {
  const migrations: Record<string, Migration> = {
    '0001_accounts': accounts,
    '0002_devices': devices,
    '0003_audit_events': auditEvents(dialect),
    '0004_oidc_identities': oidcIdentities,
    '0005_verified_addresses': verifiedAddresses,
    '0006_normalized_keys': normalizedKeys,
    '0007_deployment_meta': deploymentMeta,
    '0009_second_factors': secondFactors,
    '0008_webhook_outbox': webhookOutbox(dialect),
    '0010_passkeys': passkeys,
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

/**
 * Whether each address was proven. Rows written before this step are judged by what the row and
 * the audit trail prove, and otherwise left unverified (a claim; the owner proves it with a code):
 * - an account without a password was made by a code login or an SSO login, and both stored only
 *   the address they proved (or it came from `latchkey import` without a usable password);
 * - an account holding exactly one address whose audit trail shows a successful code login or
 *   password reset proved that address (a code only ever went to it: addresses cannot be changed).
 *   With two addresses the trail does not say which one the code went to.
 */
const verifiedAddresses: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('users').addColumn('email_verified', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    await db.schema.alterTable('users').addColumn('phone_verified', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    const provenByCode = sql`exists (select 1 from audit_events a where a.uid = users.uid and a.result = 'ok'
      and ((a.type in ('login', 'register') and a.reason = 'code') or a.type = 'password_reset'))`;
    await sql`update users set email_verified = 1 where email is not null
      and (password_hash is null or (phone is null and ${provenByCode}))`.execute(db);
    await sql`update users set phone_verified = 1 where phone is not null
      and (password_hash is null or (email is null and ${provenByCode}))`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await db.schema.alterTable('users').dropColumn('phone_verified').execute();
    await db.schema.alterTable('users').dropColumn('email_verified').execute();
  },
};

/**
 * Usernames are keyed by NFKC + case fold (usernameKey, ports/accounts.ts) and emails by NFC + lower-case
 * (account-repo.ts) instead of a plain lower-case, so existing keys are recomputed here, in
 * JavaScript (neither database has NFKC), a page at a time.
 * Most names (ASCII) keep their key. Two existing accounts whose names are lookalikes of each other
 * (`alice` and `ａｌｉｃｅ`) cannot share the new key: the one already keyed that way keeps it (else
 * the first in uid order), the other keeps its old key, which no normalised lookup produces any
 * more — it signs in by email, phone, code or SSO from then on (rare, and better than two
 * indistinguishable accounts). Stored display names are left as they were.
 */
const KEY_PAGE = 5000;

interface KeyedRow {
  uid: string;
  username: string;
  username_lower: string;
  email: string | null;
  email_lower: string | null;
}

const normalizedKeys: Migration = {
  async up(db: Kysely<unknown>) {
    let after = '';
    for (;;) {
      const page = await sql<KeyedRow>`select uid, username, username_lower, email, email_lower from users
        where uid > ${after} order by uid limit ${KEY_PAGE}`.execute(db);
      for (const row of page.rows) {
        await rekeyUsername(db, row);
        await rekeyEmail(db, row);
      }
      const last = page.rows.at(-1);
      if (last === undefined || page.rows.length < KEY_PAGE) return;
      after = last.uid;
    }
  },
  async down() {
    // Nothing to undo: a normalised key is as valid a lower-case key as the old one was.
  },
};

/** Checked before writing: on PostgreSQL a failed UPDATE would abort the migration's transaction. */
async function rekeyUsername(db: Kysely<unknown>, row: KeyedRow): Promise<void> {
  const key = usernameKey(row.username);
  if (key === row.username_lower) return;
  const holder = await sql<{ uid: string }>`select uid from users where username_lower = ${key}`.execute(db);
  if (holder.rows.length > 0) return;
  await sql`update users set username_lower = ${key} where uid = ${row.uid}`.execute(db);
}

/** As rekeyUsername; of two lookalike emails the one already keyed that way keeps the address. */
async function rekeyEmail(db: Kysely<unknown>, row: KeyedRow): Promise<void> {
  if (row.email === null) return;
  const key = row.email.normalize('NFC').toLowerCase();
  if (key === row.email_lower) return;
  const holder = await sql<{ uid: string }>`select uid from users where email_lower = ${key}`.execute(db);
  if (holder.rows.length > 0) return;
  await sql`update users set email_lower = ${key} where uid = ${row.uid}`.execute(db);
}

/**
 * The deployment id (src/ops/deployment-id.ts): written once, here, so every node and every CLI run
 * reads the same one, and the session store is checked against it before anything acts on sessions.
 * Drawn from node:crypto rather than the Random port: a migration runs once per database, outside
 * any runtime, and no test needs to choose the value.
 * A database that already holds accounts has been served with some store before ids existed: it is
 * marked paired, so the CLI does not adopt whatever store it is pointed at; the next `serve` pairs
 * the store it runs on.
 */
const deploymentMeta: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('latchkey_meta')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('value', 'text', (c) => c.notNull())
      .execute();
    await sql`insert into latchkey_meta (name, value) values ('deployment_id', ${randomBytes(16).toString('hex')})`.execute(db);
    await sql`insert into latchkey_meta (name, value)
      select 'store_paired', 'before deployment ids' where exists (select 1 from users)`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('latchkey_meta').execute();
  },
};

/**
 * Second factors (adapters/db/second-factor-repo.ts): one TOTP secret per account, sealed, with the
 * last time step it accepted; recovery codes as hashes, one row each, so using one is one DELETE.
 */
const secondFactors: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('totp_factors')
      .addColumn('uid', 'text', (c) => c.primaryKey())
      .addColumn('sealed', 'text', (c) => c.notNull())
      .addColumn('enabled_at', 'bigint')
      .addColumn('last_step', 'bigint', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addForeignKeyConstraint('totp_factors_uid_fkey', ['uid'], 'users', ['uid'], (fk) => fk.onDelete('cascade'))
      .execute();
    await db.schema
      .createTable('recovery_codes')
      .addColumn('uid', 'text', (c) => c.notNull())
      .addColumn('code_hash', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('recovery_codes_pkey', ['uid', 'code_hash'])
      .addForeignKeyConstraint('recovery_codes_uid_fkey', ['uid'], 'users', ['uid'], (fk) => fk.onDelete('cascade'))
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('recovery_codes').execute();
    await db.schema.dropTable('totp_factors').execute();
  },
};

/**
 * Events owed to webhooks (adapters/db/outbox.ts, docs/design.md §3.6). The (webhook, uid, id) index
 * finds a user's oldest row (only that one is ever delivered); (next_at) finds the due ones.
 */
function webhookOutbox(dialect: SqlDialect): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('webhook_outbox')
        .addColumn('id', dialect === 'postgres' ? 'bigserial' : 'integer', (c) =>
          dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('webhook', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('uid', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_at', 'bigint', (c) => c.notNull())
        .addColumn('leased_until', 'bigint', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex('webhook_outbox_user_idx').on('webhook_outbox').columns(['webhook', 'uid', 'id']).execute();
      await db.schema.createIndex('webhook_outbox_next_idx').on('webhook_outbox').column('next_at').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('webhook_outbox').execute();
    },
  };
}

/**
 * Passkeys (adapters/db/passkey-repo.ts): one row per WebAuthn credential, keyed by its credential
 * id (base64url, unique across accounts: an assertion names only the credential). The COSE public
 * key is stored base64url; `counter` is the authenticator's signature counter, raised only by a
 * conditional UPDATE.
 */
const passkeys: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('passkeys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('uid', 'text', (c) => c.notNull())
      .addColumn('public_key', 'text', (c) => c.notNull())
      .addColumn('counter', 'bigint', (c) => c.notNull())
      .addColumn('transports', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('last_used_at', 'bigint')
      .addForeignKeyConstraint('passkeys_uid_fkey', ['uid'], 'users', ['uid'], (fk) => fk.onDelete('cascade'))
      .execute();
    await db.schema.createIndex('passkeys_uid_idx').on('passkeys').column('uid').execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('passkeys').execute();
  },
};
