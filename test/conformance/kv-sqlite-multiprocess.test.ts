/**
 * SqliteKv's atomicity holds across processes sharing one file (several `latchkey serve` on one
 * host): two processes race on the same keys, and every total must come out exact.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, it } from 'node:test';
import { SqliteKv } from '../../src/adapters/sqlite/sqlite-kv.ts';

const ROUNDS = 200;
const WORKER = join(import.meta.dirname, '..', 'support', 'sqlite-kv-worker.ts');

interface WorkerResult {
  casConflicts: number;
  prizes: number;
  nxWins: number;
}

/** Starts a worker; `ready` resolves when it waits for the go key, `done` with its result. */
function startWorker(path: string): { ready: Promise<void>; done: Promise<WorkerResult> } {
  const child = spawn(process.execPath, [WORKER, path, String(ROUNDS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines = createInterface({ input: child.stdout });
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const done = new Promise<WorkerResult>((resolve, reject) => {
    let result: WorkerResult | undefined;
    lines.on('line', (line) => {
      if (line === 'ready') markReady();
      else result = JSON.parse(line) as WorkerResult;
    });
    child.once('exit', (code) => {
      if (code === 0 && result) resolve(result);
      else reject(new Error(`worker exited with ${code}`));
    });
  });
  return { ready, done };
}

const dir = mkdtempSync(join(tmpdir(), 'latchkey-kv-mp-'));
const children: ChildProcess[] = [];
after(() => {
  // A worker that has not finished by now (a failed or timed-out test) must not outlive the run.
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

it('two processes on one SQLite file never lose an incr, a compareAndSet, a getdel or a set nx', { timeout: 60_000 }, async (t) => {
  const path = join(dir, 'shared.db');
  const kv = new SqliteKv({ path });
  try {
    await kv.set('cas', '0');
    for (let round = 0; round < ROUNDS; round += 1) await kv.set(`prize:${round}`, 'p');
    const workers = [startWorker(path), startWorker(path)];
    await Promise.all(workers.map((w) => w.ready));
    await kv.set('go', '1');
    const results = await Promise.all(workers.map((w) => w.done));
    t.diagnostic(`compareAndSet conflicts (proof the processes overlapped): ${results.map((r) => r.casConflicts)}`);

    assert.equal(await kv.get('counter'), String(2 * ROUNDS));
    assert.equal(await kv.get('cas'), String(2 * ROUNDS));
    assert.equal(results.reduce((sum, r) => sum + r.prizes, 0), ROUNDS);
    assert.equal(results.reduce((sum, r) => sum + r.nxWins, 0), ROUNDS);
  } finally {
    await kv.close();
  }
});
