/**
 * Which deployment a session store and an account database belong to, so that nothing acts on one
 * with the other of a different deployment. `LATCHKEY_DB=postgres://… latchkey user ban UID` without
 * `LATCHKEY_STORE` once set the ban in the right database and swept the default SQLite store while
 * the sessions lived in Redis: "revoked 0 session(s)", and every session stayed alive.
 *
 * The account database holds the id (migration 0007, table latchkey_meta); the store holds a copy
 * under DEPLOYMENT_ID_KEY (under store_prefix, so deployments sharing one Redis stay apart).
 * - Both hold it and they differ: every command and `serve` refuse.
 * - The store holds none: `serve` writes it (a new store, or one emptied by a restart without
 *   persistence, must not keep a deployment down). A session command writes it only when no store
 *   was ever paired with the database (a fresh pair); otherwise it refuses, since an empty store
 *   next to a database in use is the very mistake above.
 * - Commands that touch no session only compare.
 */
import { sql, type Kysely } from 'kysely';
import type { Kv } from '../ports/kv.ts';
import type { Database } from '../adapters/db/schema.ts';
import { runPeriodically, type PeriodicLogger, type PeriodicTask } from './periodic.ts';

export const DEPLOYMENT_ID_KEY = 'deployment-id';

/** serve pairs any empty store; sessions pairs one only for a database never paired; compare never writes. */
export type PairingMode = 'serve' | 'sessions' | 'compare';

/** How the two stores are named in a refusal: their configured URLs (passwords masked here). */
export interface StoreNames {
  readonly store: string;
  readonly storePrefix: string;
  readonly db: string;
}

/** A refusal to run on stores of two deployments: one line, for the operator. */
export class DeploymentMismatchError extends Error {
  override readonly name = 'DeploymentMismatchError';
}

interface DatabaseMeta {
  readonly id: string;
  readonly paired: boolean;
}

/** The deployment id both stores agree on; throws DeploymentMismatchError when they do not. */
export async function verifyDeployment(kv: Kv, db: Kysely<Database>, mode: PairingMode, names: StoreNames): Promise<string> {
  const meta = await readMeta(db);
  const held = await kv.get(DEPLOYMENT_ID_KEY);
  if (held === meta.id) return meta.id;
  if (held !== null) throw mismatch(held, meta.id, names);
  if (mode === 'compare') return meta.id;
  if (mode === 'sessions' && meta.paired) {
    throw new DeploymentMismatchError(
      `the session store ${describeStore(names)} holds no deployment id, but the account database ${maskUrl(names.db)} ` +
        `(deployment ${meta.id}) is in use with another store: set LATCHKEY_STORE and LATCHKEY_STORE_PREFIX as the servers ` +
        'have them (a new or emptied store is paired by starting `latchkey serve` on it)',
    );
  }
  // NX: two nodes starting at once on an empty store both try; the loser must agree with the winner.
  if (!(await kv.set(DEPLOYMENT_ID_KEY, meta.id, { nx: true }))) {
    const winner = await kv.get(DEPLOYMENT_ID_KEY);
    if (winner !== meta.id) throw mismatch(winner ?? '(none)', meta.id, names);
  }
  await sql`insert into latchkey_meta (name, value) values ('store_paired', 'yes') on conflict (name) do nothing`.execute(db);
  return meta.id;
}

async function readMeta(db: Kysely<Database>): Promise<DatabaseMeta> {
  const rows = await sql<{ name: string; value: string }>`select name, value from latchkey_meta`.execute(db);
  const id = rows.rows.find((row) => row.name === 'deployment_id')?.value;
  // Migration 0007 writes it and nothing deletes it: a database without one was edited by hand.
  if (id === undefined) throw new DeploymentMismatchError('the account database has no deployment id: run `latchkey migrate`');
  return { id, paired: rows.rows.some((row) => row.name === 'store_paired') };
}

function mismatch(held: string, id: string, names: StoreNames): DeploymentMismatchError {
  return new DeploymentMismatchError(
    `the session store ${describeStore(names)} belongs to deployment ${held} but the account database ` +
      `${maskUrl(names.db)} to deployment ${id}: point LATCHKEY_STORE and LATCHKEY_DB at the same deployment`,
  );
}

export function describeStore(names: Pick<StoreNames, 'store' | 'storePrefix'>): string {
  return names.storePrefix === '' ? maskUrl(names.store) : `${maskUrl(names.store)} (prefix ${names.storePrefix})`;
}

/**
 * Store and database URLs may carry passwords; what is printed or logged has them masked:
 * `user:secret@` → `user:***@`, a Redis `secret@` → `***@`, `?password=secret` → `?password=***`.
 */
export function maskUrl(url: string): string {
  return url
    .replace(/^([a-z0-9+.-]+:\/\/)([^@/?#]*)@/i, (_match, scheme: string, userinfo: string) => {
      const colon = userinfo.indexOf(':');
      if (colon !== -1) return `${scheme}${userinfo.slice(0, colon)}:***@`;
      // redis-cluster:// and redis-sentinel:// read a lone userinfo as the password; PostgreSQL as the user.
      return scheme.startsWith('redis') ? `${scheme}***@` : `${scheme}${userinfo}@`;
    })
    .replace(/([?&](?:password|pass|sslpassword)=)[^&#]*/gi, '$1***');
}

const KEEP_INTERVAL_MS = 30_000;

/**
 * A running node writes the id back if the store lost it (a Redis restarted without persistence),
 * so that the CLI's session commands are not refused for long after such a restart.
 */
export function keepDeploymentId(kv: Kv, id: string, log: PeriodicLogger, intervalMs = KEEP_INTERVAL_MS): PeriodicTask {
  return runPeriodically('deployment id', intervalMs, async () => {
    if (await kv.set(DEPLOYMENT_ID_KEY, id, { nx: true })) {
      log.warn({ deployment_id: id }, 'the session store had lost its deployment id (emptied?); written again');
      return;
    }
    const held = await kv.get(DEPLOYMENT_ID_KEY);
    if (held !== null && held !== id) {
      log.warn({ deployment_id: id, store_deployment_id: held }, 'the session store now belongs to another deployment');
    }
  }, log);
}
