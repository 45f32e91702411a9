/**
 * PasskeyRepo on Kysely, in the account database (docs/design.md §4, second factors). Raising the
 * signature counter is one conditional UPDATE whose row count says whether this login counted.
 */
import type { Kysely } from 'kysely';
import type { Passkey, PasskeyRepo } from '../../ports/passkeys.ts';
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

  async add(passkey: Passkey): Promise<boolean> {
    const row: PasskeysTable = {
      id: passkey.id,
      uid: passkey.uid,
      public_key: passkey.publicKey,
      counter: passkey.counter,
      transports: JSON.stringify(passkey.transports),
      name: passkey.name,
      created_at: passkey.createdAt,
      last_used_at: passkey.lastUsedAt,
    };
    // A credential id already stored (for any account) inserts nothing: the row count says so.
    const result = await guard(this.#db.insertInto('passkeys').values(row).onConflict((oc) => oc.column('id').doNothing()).executeTakeFirst());
    return Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
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
