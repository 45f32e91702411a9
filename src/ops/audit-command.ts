/** `latchkey audit tail`: the latest audit events, straight from the account database. */
import type { Config } from '../config/config.ts';
import type { StoredAuditEvent } from '../ports/accounts.ts';
import { LatchkeyError } from '../core/errors.ts';

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 1000;

export async function auditTail(config: Config, uid: string | undefined, limitText: string | undefined): Promise<number> {
  const limit = limitText === undefined ? DEFAULT_LIMIT : Number(limitText);
  if (!/^\d+$/.test(limitText ?? '1') || limit < 1 || limit > MAX_LIMIT) {
    throw new LatchkeyError('invalid_request', `--limit must be a whole number from 1 to ${MAX_LIMIT}`);
  }
  const { openAccountStore } = await import('../adapters/db/open.ts');
  const store = await openAccountStore(config.db);
  try {
    await (await import('./checked-runtime.ts')).requireSameDeployment(config, store.db);
    const events = await store.repo.queryAudit({ ...(uid === undefined ? {} : { uid }), limit });
    // The query pages newest first; a tail reads oldest first, the newest at the bottom.
    process.stdout.write(events.reverse().map(formatEvent).join(''));
  } finally {
    await store.close();
  }
  return 0;
}

/** One line: time, type, result, then the fields that are set. Quoted where they may hold spaces. */
export function formatEvent(event: StoredAuditEvent): string {
  const fields = [
    new Date(event.at).toISOString(),
    event.type,
    event.result,
    `uid=${event.uid ?? '-'}`,
    event.sid === null ? null : `sid=${event.sid}`,
    event.ip === null ? null : `ip=${event.ip}`,
    event.reason === null ? null : `reason=${JSON.stringify(event.reason)}`,
    event.userAgent === null || event.userAgent === '' ? null : `ua=${JSON.stringify(event.userAgent)}`,
  ];
  return `${fields.filter((field) => field !== null).join(' ')}\n`;
}
