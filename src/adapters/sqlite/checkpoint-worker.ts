/**
 * The worker thread of checkpointer.ts: a connection of its own to one SQLite file, checkpointing
 * its WAL (PASSIVE: no lock taken, nobody blocked) every `intervalMs`, and telling the main thread
 * what each checkpoint that found frames did.
 */
import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';

const { file, intervalMs } = workerData as { file: string; intervalMs: number };
const db = new DatabaseSync(file, { timeout: 0 });
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');

let last = '';
setInterval(() => {
  let row;
  try {
    row = checkpoint.get();
  } catch (error) {
    // Another process's checkpoint of the same file is running: the next tick tries again.
    if (error instanceof Error && 'errcode' in error && typeof error.errcode === 'number' && (error.errcode & 0xff) === 5) return;
    throw error;
  }
  const report = { log: Number(row?.log ?? 0), checkpointed: Number(row?.checkpointed ?? 0) };
  const said = `${report.log}/${report.checkpointed}`;
  if (report.log > 0 && said !== last) parentPort?.postMessage(report);
  last = said;
}, intervalMs);
