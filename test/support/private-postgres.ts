/**
 * A private PostgreSQL server that a test may kill and restart: the machine's shared one serves
 * other test files at the same time and must never be stopped. initdb refuses to run as root, so
 * as root the server runs as the `postgres` user in a temporary directory it owns.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './processes.ts';

const inCi = process.env.CI === 'true' || process.env.CI === '1';
const PG_ROOT = '/usr/lib/postgresql';

export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string;
  readonly port: number;
  /** `pg_ctl stop -m immediate`: every backend dies at once, as in a crash or a kill -9. */
  crash(): void;
  /** Starts it again on the same port with the same data (crash recovery runs first). */
  start(): void;
  /** Stops it and removes its directory. */
  destroy(): void;
}

function binDir(): string | null {
  if (!existsSync(PG_ROOT)) return null;
  const versions = readdirSync(PG_ROOT).filter((v) => existsSync(join(PG_ROOT, v, 'bin', 'pg_ctl'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? null : join(PG_ROOT, versions[0], 'bin');
}

const asRoot = process.getuid?.() === 0;

function postgresIds(): { uid: number; gid: number } | null {
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return null;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Returns false (run) when a private server can be started here, else a skip message (CI: throws). */
export function skipUnlessPrivatePostgres(): false | string {
  const problem = binDir() === null ? `no PostgreSQL server binaries under ${PG_ROOT}`
    : asRoot && postgresIds() === null ? 'running as root but there is no postgres user to run initdb as'
      : null;
  if (problem === null) return false;
  if (inCi) throw new Error(`private PostgreSQL is required in CI: ${problem}`);
  const message = `SKIPPED: ${problem} — install PostgreSQL to run this suite`;
  process.stderr.write(`\n*** ${message} ***\n\n`);
  return message;
}

function run(bin: string, args: readonly string[]): SpawnSyncReturns<string> {
  const [command, commandArgs] = asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, [...args]];
  const result = spawnSync(command, commandArgs, { encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) {
    throw new Error(`${bin} ${args.join(' ')} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  }
  return result;
}

/** `maxConnections`: 30 by default; several latchkey nodes (10 pooled connections each) need more. */
export async function startPrivatePostgres(options: { maxConnections?: number } = {}): Promise<PrivatePostgres> {
  const bin = binDir();
  if (bin === null) throw new Error(`no PostgreSQL under ${PG_ROOT}`);
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-pg-'));
  const ids = asRoot ? postgresIds() : null;
  if (ids !== null) chownSync(dir, ids.uid, ids.gid);
  const data = join(dir, 'data');
  const port = await freePort();
  const pgCtl = join(bin, 'pg_ctl');
  // fsync off and a small footprint: a throwaway server on a 2-core machine shared with other tests.
  const serverOptions = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=16MB -c max_connections=${options.maxConnections ?? 30}`;
  const start = () => {
    run(pgCtl, ['-D', data, '-o', serverOptions, '-l', join(dir, 'log'), '-w', '-t', '30', 'start']);
  };
  try {
    run(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
    start();
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  let running = true;
  const stop = (mode: 'immediate' | 'fast') => {
    if (!running) return;
    run(pgCtl, ['-D', data, '-m', mode, '-w', 'stop']);
    running = false;
  };
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    crash: () => stop('immediate'),
    start: () => {
      if (running) return;
      start();
      running = true;
    },
    destroy: () => {
      try {
        stop('immediate');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
