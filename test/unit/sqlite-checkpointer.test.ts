/**
 * WAL checkpoints off the event loop (src/adapters/sqlite/checkpointer.ts): the connections that
 * write a file never checkpoint it themselves while its worker runs; the worker does, and the WAL's
 * pages reach the database file; if the worker dies, the connections checkpoint again.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { checkpointerOf, holdCheckpoints, releaseCheckpoints } from '../../src/adapters/sqlite/checkpointer.ts';
import { SqliteKv } from '../../src/adapters/sqlite/sqlite-kv.ts';
import { openAccountStore } from '../../src/adapters/db/open.ts';

const dir = mkdtempSync(join(tmpdir(), 'latchkey-checkpoints-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const autocheckpoint = (db: DatabaseSync): number => Number(db.prepare('PRAGMA wal_autocheckpoint').get()?.wal_autocheckpoint);

/** A connection in WAL mode, as the Kv and the account database open theirs. */
function open(path: string): DatabaseSync {
  const db = new DatabaseSync(path);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT)');
  return db;
}

/** 3,000 pages of commits, three times what makes a connection checkpoint by itself. */
function writePages(db: DatabaseSync): void {
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  for (let i = 0; i < 3000; i += 1) insert.run('x'.repeat(3000));
}

describe('SQLite WAL checkpoints on a worker thread', () => {
  it('a held connection does not checkpoint; the worker does, and the pages reach the database file', async () => {
    const path = join(dir, 'held.db');
    const db = open(path);
    holdCheckpoints(path, db);
    try {
      assert.equal(autocheckpoint(db), 0);
      const checkpointer = checkpointerOf(path);
      assert.ok(checkpointer?.running);
      const before = statSync(path).size;
      writePages(db);
      // The worker may have run during the writes (it is another thread); wait for a checkpoint
      // that leaves nothing in the WAL: then every page is in the database file.
      let report = await checkpointer.next();
      while (report.checkpointed < report.log) report = await checkpointer.next();
      assert.ok(statSync(path).size > before + 3000 * 3000);
    } finally {
      releaseCheckpoints(db);
      db.close();
    }
    assert.equal(checkpointerOf(path), undefined, 'the worker stops with its last holder');
  });

  it('an unheld connection checkpoints by itself (what the worker takes over)', () => {
    const path = join(dir, 'unheld.db');
    const db = open(path);
    try {
      assert.equal(autocheckpoint(db), 1000);
      const before = statSync(path).size;
      writePages(db);
      assert.ok(statSync(path).size > before, 'the commits past 1,000 pages copied the WAL back');
    } finally {
      db.close();
    }
  });

  it('when the worker dies, every connection it served checkpoints by itself again', async () => {
    const path = join(dir, 'orphaned.db');
    const first = open(path);
    const second = open(path);
    holdCheckpoints(path, first);
    holdCheckpoints(path, second);
    const warned = new Promise<string>((resolve) => process.once('warning', (warning) => resolve(warning.message)));
    try {
      assert.equal(autocheckpoint(first), 0);
      await checkpointerOf(path)?.stop();
      assert.match(await warned, /back on the event loop/);
      assert.equal(autocheckpoint(first), 1000);
      assert.equal(autocheckpoint(second), 1000);
      assert.equal(checkpointerOf(path), undefined);
      const before = statSync(path).size;
      writePages(first);
      assert.ok(statSync(path).size > before);
    } finally {
      for (const db of [first, second]) {
        releaseCheckpoints(db);
        db.close();
      }
    }
  });

  it('a process whose stores were never closed still exits: the worker keeps nothing alive', () => {
    const script = join(dir, 'unclosed.ts');
    writeFileSync(script, `
      const { SqliteKv } = await import(${JSON.stringify(new URL('../../src/adapters/sqlite/sqlite-kv.ts', import.meta.url).href)});
      const { openAccountStore } = await import(${JSON.stringify(new URL('../../src/adapters/db/open.ts', import.meta.url).href)});
      const kv = new SqliteKv({ path: ${JSON.stringify(join(dir, 'unclosed.db'))} });
      await kv.set('k', 'v');
      await openAccountStore(${JSON.stringify(`sqlite:${join(dir, 'unclosed.db')}`)});
      console.log('done');`);
    const child = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(child.stdout.trim(), 'done', child.stderr);
    assert.equal(child.stderr, '', 'the worker ran (a failed one warns)');
    assert.equal(child.signal, null, 'killed by the timeout: something kept the process alive');
    assert.equal(child.status, 0);
  });

  it("the Kv and the account database share one worker per file, stopped when both have closed", async () => {
    const path = join(dir, 'latchkey.db');
    const kv = new SqliteKv({ path });
    const accounts = await openAccountStore(`sqlite:${path}`);
    try {
      assert.ok(checkpointerOf(path)?.running);
      await kv.set('k', 'v');
      await kv.close();
      assert.ok(checkpointerOf(path)?.running, 'still held by the account database');
    } finally {
      await accounts.close();
    }
    assert.equal(checkpointerOf(path), undefined);
  });
});
