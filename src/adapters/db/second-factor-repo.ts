/**
 * SecondFactorRepo on Kysely, in the account database. "Used once" is a conditional UPDATE or a
 * DELETE whose row count says which caller won (docs/design.md §4, second factors).
 */
import type { Kysely } from 'kysely';
import type { SecondFactorRepo, TotpFactor } from '../../ports/second-factors.ts';
import { guard } from './db-errors.ts';
import type { Database } from './schema.ts';

export interface TotpFactorsTable {
  uid: string;
  sealed: string;
  enabled_at: number | null;
  last_step: number;
  created_at: number;
}

export interface RecoveryCodesTable {
  uid: string;
  code_hash: string;
}

type SecondFactorTables = {
  totp_factors: TotpFactorsTable;
  recovery_codes: RecoveryCodesTable;
};

const changed = (result: { numUpdatedRows?: bigint; numDeletedRows?: bigint; numInsertedOrUpdatedRows?: bigint } | undefined): boolean =>
  Number(result?.numUpdatedRows ?? result?.numDeletedRows ?? result?.numInsertedOrUpdatedRows ?? 0n) > 0;

export class KyselySecondFactorRepo implements SecondFactorRepo {
  readonly #db: Kysely<Database & SecondFactorTables>;

  constructor(db: Kysely<Database>) {
    this.#db = db.withTables<SecondFactorTables>();
  }

  async findTotp(uid: string): Promise<TotpFactor | null> {
    const row = await guard(this.#db.selectFrom('totp_factors').selectAll().where('uid', '=', uid).executeTakeFirst());
    return row === undefined ? null : { sealed: row.sealed, enabledAt: row.enabled_at === null ? null : Number(row.enabled_at), lastStep: Number(row.last_step) };
  }

  async setPendingTotp(uid: string, sealed: string, now: number): Promise<boolean> {
    const row = { uid, sealed, enabled_at: null, last_step: 0, created_at: now };
    // Insert, or replace a pending one; an enabled secret is never overwritten by a new setup.
    const result = await guard(
      this.#db.insertInto('totp_factors').values(row)
        .onConflict((oc) => oc.column('uid').doUpdateSet({ sealed, created_at: now, last_step: 0 }).where('totp_factors.enabled_at', 'is', null))
        .executeTakeFirst(),
    );
    return changed(result);
  }

  async enableTotp(uid: string, sealed: string, step: number, recoveryHashes: readonly string[], now: number): Promise<boolean> {
    return guard(this.#db.transaction().execute(async (tx) => {
      const result = await tx.updateTable('totp_factors')
        .set({ enabled_at: now, last_step: step })
        .where('uid', '=', uid).where('sealed', '=', sealed).where('enabled_at', 'is', null)
        .executeTakeFirst();
      if (!changed(result)) return false;
      await tx.deleteFrom('recovery_codes').where('uid', '=', uid).execute();
      if (recoveryHashes.length > 0) await tx.insertInto('recovery_codes').values(recoveryHashes.map((code_hash) => ({ uid, code_hash }))).execute();
      return true;
    }));
  }

  async useTotpStep(uid: string, step: number): Promise<boolean> {
    const result = await guard(
      this.#db.updateTable('totp_factors').set({ last_step: step })
        .where('uid', '=', uid).where('enabled_at', 'is not', null).where('last_step', '<', step)
        .executeTakeFirst(),
    );
    return changed(result);
  }

  async removeTotp(uid: string): Promise<boolean> {
    return guard(this.#db.transaction().execute(async (tx) => {
      await tx.deleteFrom('recovery_codes').where('uid', '=', uid).execute();
      return changed(await tx.deleteFrom('totp_factors').where('uid', '=', uid).executeTakeFirst());
    }));
  }

  async useRecoveryCode(uid: string, hash: string): Promise<boolean> {
    return changed(await guard(this.#db.deleteFrom('recovery_codes').where('uid', '=', uid).where('code_hash', '=', hash).executeTakeFirst()));
  }

  async replaceRecoveryCodes(uid: string, hashes: readonly string[]): Promise<void> {
    await guard(this.#db.transaction().execute(async (tx) => {
      await tx.deleteFrom('recovery_codes').where('uid', '=', uid).execute();
      if (hashes.length > 0) await tx.insertInto('recovery_codes').values(hashes.map((code_hash) => ({ uid, code_hash }))).execute();
    }));
  }

  async countRecoveryCodes(uid: string): Promise<number> {
    const row = await guard(
      this.#db.selectFrom('recovery_codes').select((eb) => eb.fn.countAll<number>().as('n')).where('uid', '=', uid).executeTakeFirstOrThrow(),
    );
    return Number(row.n);
  }
}
