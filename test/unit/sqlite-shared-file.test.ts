/**
 * The embedded default keeps the Kv tables and the account database in one SQLite file, on two
 * connections of one process. A Kv write that found the write lock held by an account transaction
 * waiting on an await used to block the thread for the whole busy timeout — so the transaction
 * could never finish — and answered 503: two admins banning each other got a 503 for the ban that
 * landed. The Kv now gives the event loop back between attempts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { SqliteKv } from '../../src/adapters/sqlite/sqlite-kv.ts';
import { openAccountStore } from '../../src/adapters/db/open.ts';

describe('Kv and account database sharing one SQLite file', () => {
  it('a Kv write waits for an account transaction that holds the lock across awaits, without blocking it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-shared-'));
    const path = join(dir, 'latchkey.db');
    const kv = new SqliteKv({ path, busyTimeoutMs: 2000 });
    const accounts = await openAccountStore(`sqlite:${path}`);
    try {
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let inTransaction!: () => void;
      const entered = new Promise<void>((resolve) => (inTransaction = resolve));
      const transaction = accounts.db.transaction().execute(async (trx) => {
        await sql`update users set updated_at = updated_at where 1 = 0`.execute(trx);
        await sql`insert into audit_events (type, uid, sid, ip, user_agent, result, reason, at) values ('test', null, null, '', '', 'ok', null, 0)`.execute(trx);
        inTransaction();
        await held;
      });
      await entered;
      const started = performance.now();
      const write = kv.set('k', 'v');
      // The transaction finishes only if the event loop runs while the Kv write waits.
      setTimeout(release, 50);
      assert.equal(await write, true);
      await transaction;
      assert.ok(performance.now() - started < 1500, `waited ${Math.round(performance.now() - started)} ms`);
      assert.equal(await kv.get('k'), 'v');
    } finally {
      await kv.close();
      await accounts.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
