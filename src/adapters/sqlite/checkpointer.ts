/**
 * WAL checkpoints of a SQLite file, off the event loop (docs/design.md §2).
 *
 * In WAL mode a commit appends to the `-wal` file, and by default the connection whose commit
 * pushes the WAL past 1,000 pages copies it back into the database file there and then, with an
 * fsync on each side: a pause of milliseconds (tens on a busy disk) inside whichever request
 * happened to commit, and every validation waiting behind it on the event loop. Here the
 * connections of this process that write the file (the Kv's and the account database's) turn
 * their automatic checkpoints off, and one worker thread per file runs a PASSIVE checkpoint on
 * a connection of its own every CHECKPOINT_INTERVAL_MS. PASSIVE takes no write lock: it copies
 * what no reader still needs and never blocks a writer or a reader.
 *
 * Should the worker stop (an error, a thread that could not start), the connections turn their
 * automatic checkpoints back on: the WAL never grows without bound.
 */
import { resolve } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';

/** How often the worker checkpoints. At 200 logins/s the WAL grows by a few MB per second. */
export const CHECKPOINT_INTERVAL_MS = 500;
/** SQLite's default automatic checkpoint threshold, restored when the worker is gone. */
const AUTOCHECKPOINT_PAGES = 1000;
/** After a checkpoint that emptied it, a writer truncates the `-wal` file to this size. */
const WAL_SIZE_LIMIT_BYTES = 64 * 2 ** 20;

/** What one checkpoint did, as `PRAGMA wal_checkpoint` reports it, in WAL frames (pages). */
export interface CheckpointReport {
  /** Frames in the WAL. */
  readonly log: number;
  /** Frames already copied into the database file. */
  readonly checkpointed: number;
}

interface Checkpointer {
  readonly worker: Worker;
  readonly connections: Set<DatabaseSync>;
  running: boolean;
  checkpoints: number;
  readonly waiting: Set<(report: CheckpointReport) => void>;
}

const checkpointers = new Map<string, Checkpointer>();
const fileOf = new WeakMap<DatabaseSync, string>();

/**
 * Hands the checkpoints of `db` (a connection to the WAL file at `path`) to the file's worker,
 * started by its first holder. ':memory:' databases have no WAL and are left alone.
 */
export function holdCheckpoints(path: string, db: DatabaseSync): void {
  if (path === ':memory:') return;
  const file = resolve(path);
  const checkpointer = checkpointers.get(file) ?? start(file);
  checkpointer.connections.add(db);
  fileOf.set(db, file);
  db.exec(`PRAGMA journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
  if (checkpointer.running) db.exec('PRAGMA wal_autocheckpoint = 0');
}

/** Call before closing a held connection; the file's worker stops with its last holder. */
export function releaseCheckpoints(db: DatabaseSync): void {
  const file = fileOf.get(db);
  if (file === undefined) return;
  fileOf.delete(db);
  const checkpointer = checkpointers.get(file);
  if (checkpointer === undefined) return;
  checkpointer.connections.delete(db);
  if (checkpointer.connections.size > 0) return;
  checkpointers.delete(file);
  checkpointer.running = false;
  void checkpointer.worker.terminate();
}

/** The worker of a file, for tests and diagnostics: whether it runs, and its next checkpoint. */
export function checkpointerOf(path: string): {
  readonly running: boolean;
  readonly checkpoints: number;
  next(): Promise<CheckpointReport>;
  stop(): Promise<void>;
} | undefined {
  const checkpointer = checkpointers.get(resolve(path));
  if (checkpointer === undefined) return undefined;
  return {
    running: checkpointer.running,
    checkpoints: checkpointer.checkpoints,
    next: () => new Promise((resolveReport) => checkpointer.waiting.add(resolveReport)),
    stop: async () => {
      await checkpointer.worker.terminate();
    },
  };
}

function start(file: string): Checkpointer {
  const worker = new Worker(new URL('./checkpoint-worker.ts', import.meta.url), {
    workerData: { file, intervalMs: CHECKPOINT_INTERVAL_MS },
  });
  const checkpointer: Checkpointer = { worker, connections: new Set(), running: true, checkpoints: 0, waiting: new Set() };
  checkpointers.set(file, checkpointer);
  worker.on('message', (report: CheckpointReport) => {
    checkpointer.checkpoints += 1;
    for (const resolveReport of checkpointer.waiting) resolveReport(report);
    checkpointer.waiting.clear();
  });
  const stopped = (reason: string) => {
    if (!checkpointer.running) return;
    checkpointer.running = false;
    if (checkpointers.get(file) === checkpointer) checkpointers.delete(file);
    for (const db of checkpointer.connections) {
      if (db.isOpen) db.exec(`PRAGMA wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
      fileOf.delete(db);
    }
    process.emitWarning(`SQLite checkpoints of ${file} are back on the event loop: their worker ${reason}`);
  };
  worker.on('error', (error) => stopped(`failed (${error.message})`));
  worker.on('exit', (code) => stopped(`exited with code ${code}`));
  // A process's exit never waits for its checkpoints: the WAL is as durable as the database file.
  // (After the listeners: adding a 'message' listener refs the worker's port again.)
  worker.unref();
  return checkpointer;
}
