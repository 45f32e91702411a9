/**
 * PasskeyRepo on Kysely, in the account database (docs/design.md §4, second factors). Raising the
 * signature counter is one conditional UPDATE whose row count says whether this login counted;
 * adding a passkey is one conditional INSERT that counts the account's passkeys in the same statement.
 */
import { PostgresAdapter, sql, type Kysely } from 'kysely';
import type { Passkey, PasskeyAdded, PasskeyRepo } from '../../ports/passkeys.ts';
import { guard } from './db-errors.ts';
import type { Database } from './schema.ts';

export interface PasskeysTable {
  id: string;
  uid: string;
  public_key: string;
  counter: number;
  /** JSON array of transport names. */
  transports: string;
  name: string;
  created_at: number;
  last_used_at: number | null;
}

type PasskeyTables = { passkeys: PasskeysTable };

const changed = (result: { numUpdatedRows?: bigint; numDeletedRows?: bigint } | undefined): boolean =>
  Number(result?.numUpdatedRows ?? result?.numDeletedRows ?? 0n) > 0;

function fromRow(row: PasskeysTable): Passkey {
  let transports: string[] = [];
  try {
    const parsed: unknown = JSON.parse(row.transports);
    if (Array.isArray(parsed)) transports = parsed.filter((t): t is string => typeof t === 'string');
  } catch {
    // a row written by hand: no hints
  }
  return {
    id: row.id,
    uid: row.uid,
    publicKey: row.public_key,
    counter: Number(row.counter),
    transports,
    name: row.name,
    createdAt: Number(row.created_at),
    lastUsedAt: row.last_used_at === null ? null : Number(row.last_used_at),
  };
}

export class KyselyPasskeyRepo implements PasskeyRepo {
  readonly #db: Kysely<Database & PasskeyTables>;

  constructor(db: Kysely<Database>) {
    this.#db = db.withTables<PasskeyTables>();
  }

  async add(passkey: Passkey, max: number): Promise<PasskeyAdded> {
    return guard(this.#db.transaction().execute(async (trx): Promise<PasskeyAdded> => {
      // PostgreSQL (READ COMMITTED) takes a snapshot per statement: two registrations at once would
      // each count the account's passkeys without the other's uncommitted row, and both would land
      // past `max`. Locking the account's row first makes the second wait until the first commits;
      // its INSERT then starts with a new snapshot that counts the first's row. (NO KEY UPDATE:
      // enough to order registrations, without blocking rows of other tables that reference the
      // account.) SQLite runs each write statement under its one database write lock, taken before
      // the statement reads, so there the conditional INSERT alone is atomic, across processes too.
      if (this.#db.getExecutor().adapter instanceof PostgresAdapter) {
        await sql`select uid from users where uid = ${passkey.uid} for no key update`.execute(trx);
      }
      const inserted = await trx
        .insertInto('passkeys')
        .columns(['id', 'uid', 'public_key', 'counter', 'transports', 'name', 'created_at', 'last_used_at'])
        .expression(trx
          .selectNoFrom((eb) => [
            eb.val(passkey.id).as('id'),
            eb.val(passkey.uid).as('uid'),
            eb.val(passkey.publicKey).as('public_key'),
            eb.cast(eb.val(passkey.counter), 'bigint').as('counter'),
            eb.val(JSON.stringify(passkey.transports)).as('transports'),
            eb.val(passkey.name).as('name'),
            eb.cast(eb.val(passkey.createdAt), 'bigint').as('created_at'),
            eb.cast(eb.val(passkey.lastUsedAt), 'bigint').as('last_used_at'),
          ])
          // The count and the insert are one statement (SQLite also needs this WHERE to read the
          // ON CONFLICT below as the upsert clause, not as part of the SELECT).
          .where((eb) => eb(eb.selectFrom('passkeys').select((c) => c.fn.countAll<number>().as('n')).where('uid', '=', passkey.uid), '<', max)))
        // A credential id already stored (for any account) inserts nothing.
        .onConflict((oc) => oc.column('id').doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) > 0) return 'added';
      const stored = await trx.selectFrom('passkeys').select('id').where('id', '=', passkey.id).executeTakeFirst();
      return stored === undefined ? 'full' : 'taken';
    }));
  }

  async find(id: string): Promise<Passkey | null> {
    const row = await guard(this.#db.selectFrom('passkeys').selectAll().where('id', '=', id).executeTakeFirst());
    return row === undefined ? null : fromRow(row);
  }

  async list(uid: string): Promise<Passkey[]> {
    const rows = await guard(this.#db.selectFrom('passkeys').selectAll().where('uid', '=', uid).orderBy('created_at').orderBy('id').execute());
    return rows.map(fromRow);
  }

  async count(uid: string): Promise<number> {
    const row = await guard(
      this.#db.selectFrom('passkeys').select((eb) => eb.fn.countAll<number>().as('n')).where('uid', '=', uid).executeTakeFirstOrThrow(),
    );
    return Number(row.n);
  }

  async rename(uid: string, id: string, name: string): Promise<boolean> {
    return changed(await guard(this.#db.updateTable('passkeys').set({ name }).where('id', '=', id).where('uid', '=', uid).executeTakeFirst()));
  }

  async remove(uid: string, id: string): Promise<boolean> {
    return changed(await guard(this.#db.deleteFrom('passkeys').where('id', '=', id).where('uid', '=', uid).executeTakeFirst()));
  }

  async removeAll(uid: string): Promise<number> {
    const result = await guard(this.#db.deleteFrom('passkeys').where('uid', '=', uid).executeTakeFirst());
    return Number(result.numDeletedRows);
  }

  async use(id: string, counter: number, now: number): Promise<boolean> {
    const result = await guard(
      this.#db.updateTable('passkeys').set({ counter, last_used_at: now })
        .where('id', '=', id)
        // A counter of 0 means the authenticator keeps none: it may only meet a stored 0. Otherwise
        // it must rise; `<` in the same statement as the write, so the stored value never goes down.
        .where('counter', counter === 0 ? '=' : '<', counter)
        .executeTakeFirst(),
    );
    return changed(result);
  }
}
