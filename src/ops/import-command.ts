/**
 * The `latchkey import` command: wires the octo-server source, the account store and the hasher
 * to importOctoUsers. Only the account database is opened: an import touches no session.
 */
import type { Config } from '../config/config.ts';
import { openAccountStore } from '../adapters/db/open.ts';
import { openOctoUserSource } from '../adapters/octo-mysql/octo-user-source.ts';
import { createPasswordHasher } from '../runtime/password-hasher.ts';
import { systemClock } from '../ports/clock.ts';
import { requireSameDeployment } from './checked-runtime.ts';
import { formatImportReport, importOctoUsers } from './import-octo.ts';

/** Exit status: 0 when every row was imported or skipped by design, 2 when some conflicted. */
export async function importCommand(config: Config, from: string, dryRun: boolean): Promise<number> {
  const source = await openOctoUserSource(from);
  try {
    const store = await openAccountStore(config.db);
    try {
      // Like every command: no writing into the account database of another deployment than the store's.
      await requireSameDeployment(config, store.db);
      const hasher = createPasswordHasher(config.password);
      try {
        const report = await importOctoUsers({ accounts: store.repo, hasher, clock: systemClock }, source.rows(), { dryRun });
        process.stdout.write(formatImportReport(report));
        return report.conflicts.length > 0 ? 2 : 0;
      } finally {
        await hasher.close();
      }
    } finally {
      await store.close();
    }
  } finally {
    await source.close();
  }
}
