/**
 * AccountRepo on Kysely: one SQL statement per call, the same code on SQLite and PostgreSQL.
 * Uniqueness (username and email case-insensitively, zone+phone) is enforced by the database's
 * unique keys, never by a read-then-write here, so concurrent sign-ups cannot both win.
 */
import { PostgresAdapter, sql, type Expression, type Kysely, type Selectable, type SqlBool } from 'kysely';
import { usernameKey } from '../../ports/accounts.ts';
import type {
  Address, AccountRepo, AccountStatus, AuditEvent, AuditQuery, Device, NewUser, Role, StoredAuditEvent, User, UserQuery,
} from '../../ports/accounts.ts';
import type { AccessRemoval, AccessRemovalResult } from '../../ports/accounts.ts';
import type { DomainEvent } from '../../ports/events.ts';
import { guard } from './db-errors.ts';
import { insertOutboxRows, type OutboxRows } from './outbox.ts';
import type { Database, UsersTable } from './schema.ts';

export class KyselyAccountRepo implements AccountRepo {
  readonly #db: Kysely<Database>;
  #outbox: { readonly rows: OutboxRows; readonly written: () => void } | null = null;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /**
   * From now on, events passed with a change are written to the webhook outbox in the change's own
   * transaction (docs/design.md §3.6); `written` is told after the commit.
   */
  useOutbox(rows: OutboxRows, written: () => void): void {
    this.#outbox = { rows, written };
  }

  /**
   * Runs `change`; if it `applied`, the events' outbox rows are inserted in the same transaction.
   * No webhook wants them: the change alone, as before (no transaction, no cost).
   */
  async #withEvents<T>(events: readonly DomainEvent[] | undefined, change: (db: Kysely<Database>) => Promise<T>, applied: (result: T) => boolean): Promise<T> {
    const outbox = this.#outbox;
    const rows = outbox === null || events === undefined ? [] : outbox.rows.rows(events);
    if (outbox === null || rows.length === 0) return change(this.#db);
    const result = await this.#db.transaction().execute(async (trx) => {
      const done = await change(trx);
      if (applied(done)) await insertOutboxRows(trx, rows);
      return done;
    });
    if (applied(result)) outbox.written();
    return result;
  }

  async createUser(user: NewUser, now: number, events?: readonly DomainEvent[]): Promise<User> {
    const email = user.email ?? null;
    const row: UsersTable = {
      uid: user.uid,
      username: user.username,
      username_lower: usernameKey(user.username),
      name: user.name,
      email,
      email_lower: email === null ? null : foldCase(email),
      zone: user.zone ?? null,
      phone: user.phone ?? null,
      email_verified: email !== null && user.emailVerified === true ? 1 : 0,
      phone_verified: (user.phone ?? null) !== null && user.phoneVerified === true ? 1 : 0,
      password_hash: user.passwordHash,
      role: user.role ?? 'user',
      status: user.status ?? 'active',
      created_at: now,
      updated_at: now,
    };
    await guard(this.#withEvents(events, (db) => db.insertInto('users').values(row).execute(), () => true));
    return toUser(row);
  }

  findByUid(uid: string): Promise<User | null> {
    return this.#findUser('uid', uid);
  }

  findByUsername(username: string): Promise<User | null> {
    return this.#findUser('username_lower', usernameKey(username));
  }

  findByEmail(email: string): Promise<User | null> {
    return this.#findUser('email_lower', foldCase(email));
  }

  async findByPhone(zone: string, phone: string): Promise<User | null> {
    const row = await guard(
      this.#db.selectFrom('users').selectAll().where('zone', '=', zone).where('phone', '=', phone).executeTakeFirst(),
    );
    return row ? toUser(row) : null;
  }

  async releaseUnverified(address: Address, now: number): Promise<string | null> {
    const released = address.channel === 'email'
      ? this.#db.updateTable('users').set({ email: null, email_lower: null, updated_at: now })
        .where('email_lower', '=', foldCase(address.email)).where('email_verified', '=', 0)
      : this.#db.updateTable('users').set({ zone: null, phone: null, updated_at: now })
        .where('zone', '=', address.zone).where('phone', '=', address.phone).where('phone_verified', '=', 0);
    const row = await guard(released.returning('uid').executeTakeFirst());
    return row?.uid ?? null;
  }

  async markVerified(uid: string, address: Address, now: number): Promise<boolean> {
    const marked = address.channel === 'email'
      ? this.#db.updateTable('users').set({ email_verified: 1, updated_at: now })
        .where('uid', '=', uid).where('email_lower', '=', foldCase(address.email))
      : this.#db.updateTable('users').set({ phone_verified: 1, updated_at: now })
        .where('uid', '=', uid).where('zone', '=', address.zone).where('phone', '=', address.phone);
    const result = await guard(marked.executeTakeFirst());
    return result.numUpdatedRows > 0n;
  }

  async updatePasswordHash(uid: string, expected: string | null, next: string, now: number, events?: readonly DomainEvent[]): Promise<boolean> {
    // Compare-and-set: a concurrent rehash or password change that landed first is kept.
    const result = await guard(this.#withEvents(
      events,
      (db) => db
        .updateTable('users')
        .set({ password_hash: next, updated_at: now })
        .where('uid', '=', uid)
        .where('password_hash', expected === null ? 'is' : '=', expected)
        .executeTakeFirst(),
      (done) => done.numUpdatedRows > 0n,
    ));
    return result.numUpdatedRows > 0n;
  }

  setStatus(uid: string, status: AccountStatus, now: number, events?: readonly DomainEvent[]): Promise<boolean> {
    return this.#updateUser(uid, { status, updated_at: now }, events);
  }

  setRole(uid: string, role: Role, now: number, events?: readonly DomainEvent[]): Promise<boolean> {
    return this.#updateUser(uid, { role, updated_at: now }, events);
  }

  async listUsers(query: UserQuery): Promise<{ users: User[]; total: number }> {
    let matching = this.#db.selectFrom('users');
    if (query.query) {
      const search = likePattern(query.query);
      matching = matching.where((eb) => eb.or([
        like(eb.ref('username_lower'), search),
        like(eb.ref('email_lower'), search),
        // SQLite's lower() folds ASCII only; username and email are folded in JS on write instead.
        like(eb.fn<string>('lower', [eb.ref('name')]), search),
        like(eb.ref('phone'), search),
      ]));
    }
    const [rows, count] = await guard(Promise.all([
      matching.selectAll().orderBy('created_at').orderBy('uid').limit(query.limit).offset(query.offset).execute(),
      matching.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow(),
    ]));
    return { users: rows.map(toUser), total: Number(count.total) };
  }

  async upsertDevice(device: Device, events?: (isNew: boolean) => readonly DomainEvent[]): Promise<boolean> {
    const outbox = this.#outbox;
    if (outbox === null || events === undefined || !outbox.rows.enabled) return this.#upsertDevice(this.#db, device);
    // The device row and the login's events commit together: a login that fails here leaves neither.
    let written = 0;
    const isNew = await guard(this.#db.transaction().execute(async (trx) => {
      const fresh = await this.#upsertDevice(trx, device);
      const rows = outbox.rows.rows(events(fresh));
      await insertOutboxRows(trx, rows);
      written = rows.length;
      return fresh;
    }));
    if (written > 0) outbox.written();
    return isNew;
  }

  async #upsertDevice(db: Kysely<Database>, device: Device): Promise<boolean> {
    const row = {
      uid: device.uid,
      device_id: device.deviceId,
      name: device.name,
      model: device.model,
      last_login_at: device.lastLoginAt,
    };
    // Insert-or-nothing first, so that of two first logins of one device exactly one says "new".
    const inserted = await guard(
      db.insertInto('devices').values(row).onConflict((oc) => oc.columns(['uid', 'device_id']).doNothing()).executeTakeFirst(),
    );
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) > 0) return true;
    await guard(
      db.updateTable('devices')
        .set({ name: row.name, model: row.model, last_login_at: row.last_login_at })
        .where('uid', '=', row.uid).where('device_id', '=', row.device_id)
        .execute(),
    );
    return false;
  }

  async listDevices(uid: string): Promise<Device[]> {
    const rows = await guard(
      this.#db.selectFrom('devices').selectAll().where('uid', '=', uid)
        .orderBy('last_login_at', 'desc').orderBy('device_id').execute(),
    );
    return rows.map((row) => ({
      uid: row.uid,
      deviceId: row.device_id,
      name: row.name,
      model: row.model,
      lastLoginAt: row.last_login_at,
    }));
  }

  async deleteDevice(uid: string, deviceId: string): Promise<boolean> {
    const result = await guard(
      this.#db.deleteFrom('devices').where('uid', '=', uid).where('device_id', '=', deviceId).executeTakeFirst(),
    );
    return result.numDeletedRows > 0n;
  }

  async listDeviceOwnersToPrune(olderThan: number, cap: number, afterUid: string, limit: number): Promise<string[]> {
    const rows = await guard(
      this.#db.selectFrom('devices').select('uid').where('uid', '>', afterUid).groupBy('uid')
        .having((eb) => eb.or([eb(eb.fn.countAll(), '>', cap), eb(eb.fn.min('last_login_at'), '<', olderThan)]))
        .orderBy('uid').limit(limit).execute(),
    );
    return rows.map((row) => row.uid);
  }

  async deleteDevices(uid: string, deviceIds: readonly string[], loggedInBefore: number): Promise<number> {
    if (deviceIds.length === 0) return 0;
    const result = await guard(
      this.#db.deleteFrom('devices').where('uid', '=', uid).where('device_id', 'in', [...deviceIds])
        .where('last_login_at', '<', loggedInBefore).executeTakeFirst(),
    );
    return Number(result.numDeletedRows);
  }

  async appendAudit(event: AuditEvent): Promise<void> {
    await guard(
      this.#db.insertInto('audit_events').values({
        type: event.type,
        uid: event.uid,
        sid: event.sid,
        ip: event.ip,
        user_agent: event.userAgent,
        result: event.result,
        reason: event.reason,
        at: event.at,
      }).execute(),
    );
  }

  async queryAudit(query: AuditQuery): Promise<StoredAuditEvent[]> {
    let select = this.#db.selectFrom('audit_events').selectAll();
    if (query.uid !== undefined) select = select.where('uid', '=', query.uid);
    if (query.type !== undefined) select = select.where('type', '=', query.type);
    if (query.since !== undefined) select = select.where('at', '>=', query.since);
    if (query.beforeId !== undefined) select = select.where('id', '<', query.beforeId);
    const rows = await guard(select.orderBy('id', 'desc').limit(query.limit).execute());
    return rows.map((row) => ({
      id: row.id,
      type: row.type,
      uid: row.uid,
      sid: row.sid,
      ip: row.ip,
      userAgent: row.user_agent,
      result: row.result,
      reason: row.reason,
      at: row.at,
    }));
  }

  async pruneAudit(olderThan: number): Promise<number> {
    const result = await guard(this.#db.deleteFrom('audit_events').where('at', '<', olderThan).executeTakeFirst());
    return Number(result.numDeletedRows);
  }

  async ping(): Promise<boolean> {
    try {
      await sql`select 1`.execute(this.#db);
      return true;
    } catch {
      return false;
    }
  }

  close(): Promise<void> {
    return this.#db.destroy();
  }

  async #findUser(column: 'uid' | 'username_lower' | 'email_lower', value: string): Promise<User | null> {
    const row = await guard(this.#db.selectFrom('users').selectAll().where(column, '=', value).executeTakeFirst());
    return row ? toUser(row) : null;
  }

  async #updateUser(uid: string, changes: Partial<UsersTable>, events?: readonly DomainEvent[]): Promise<boolean> {
    const result = await guard(this.#withEvents(
      events,
      (db) => db.updateTable('users').set(changes).where('uid', '=', uid).executeTakeFirst(),
      (done) => done.numUpdatedRows > 0n,
    ));
    return result.numUpdatedRows > 0n;
  }

  // --- The last active admin: a ban or demotion that would leave none is refused. ---

  async removeAccessKeepingAnAdmin(uid: string, change: AccessRemoval, now: number, events?: readonly DomainEvent[]): Promise<AccessRemovalResult> {
    const outbox = this.#outbox;
    const rows = outbox === null || events === undefined ? [] : outbox.rows.rows(events);
    const result = await guard(this.#db.transaction().execute(async (trx): Promise<AccessRemovalResult> => {
      // PostgreSQL (READ COMMITTED) counts with a snapshot per statement: two admins banning each
      // other at once would each still count the other as active, and both bans would land. Locking
      // every active admin's row first (in uid order, so two of these never deadlock) makes the
      // second wait for the first and then count again. SQLite runs each write statement under its
      // one database write lock, so there the conditional UPDATE alone is atomic.
      if (this.#db.getExecutor().adapter instanceof PostgresAdapter) {
        await sql`select uid from users where role = 'admin' and status = 'active' order by uid for update`.execute(trx);
      }
      const result = await trx
        .updateTable('users')
        .set({ ...change, updated_at: now })
        .where('uid', '=', uid)
        .where((eb) => eb.or([
          eb('role', '<>', 'admin'),
          eb('status', '<>', 'active'),
          eb(
            eb.selectFrom('users as other').select((other) => other.fn.countAll<number>().as('admins'))
              .where('other.role', '=', 'admin').where('other.status', '=', 'active').where('other.uid', '<>', uid),
            '>',
            0,
          ),
        ]))
        .executeTakeFirst();
      if (result.numUpdatedRows > 0n) {
        await insertOutboxRows(trx, rows);
        return 'done';
      }
      const exists = await trx.selectFrom('users').select('uid').where('uid', '=', uid).executeTakeFirst();
      return exists === undefined ? 'not_found' : 'last_admin';
    }));
    if (result === 'done' && rows.length > 0) outbox?.written();
    return result;
  }
}

/**
 * The one case folding for emails (and admin searches), on write and on lookup alike: NFC first,
 * as destinations are (core/destinations.ts), so an accent typed decomposed is the same address —
 * not a second account's claim that looks the same, nor a code that finds no account.
 */
function foldCase(value: string): string {
  return value.normalize('NFC').toLowerCase();
}

/** A substring pattern with LIKE's wildcards escaped, so a search for `a_b` means the literal text. */
function likePattern(query: string): string {
  return `%${foldCase(query).replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

function like(column: Expression<string | null>, pattern: string): Expression<SqlBool> {
  // SQLite has no default LIKE escape character; naming one makes both databases agree.
  return sql<SqlBool>`${column} like ${pattern} escape '\\'`;
}

function toUser(row: Selectable<UsersTable>): User {
  return {
    uid: row.uid,
    username: row.username,
    name: row.name,
    email: row.email,
    zone: row.zone,
    phone: row.phone,
    emailVerified: row.email !== null && row.email_verified === 1,
    phoneVerified: row.phone !== null && row.phone_verified === 1,
    passwordHash: row.password_hash,
    role: row.role,
    status: row.status,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
