/**
 * The deployment-id rules one by one, on an in-memory store and a real SQLite account database:
 * who may write the id into an empty store, what a refusal names, and which secrets it hides.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { openAccountStore, type AccountStore } from '../../src/adapters/db/open.ts';
import type { Database } from '../../src/adapters/db/schema.ts';
import { DEPLOYMENT_ID_KEY, DeploymentMismatchError, keepDeploymentId, maskUrl, verifyDeployment } from '../../src/ops/deployment-id.ts';

const NAMES = { store: 'redis://:hunter2@10.0.0.5:6379', storePrefix: 'lk:', db: 'postgres://app:hunter2@db/latchkey' };

async function withDatabase(work: (store: AccountStore) => Promise<void>): Promise<void> {
  const store = await openAccountStore('sqlite::memory:');
  try {
    await work(store);
  } finally {
    await store.close();
  }
}

const idOf = async (store: AccountStore) =>
  (await sql<{ value: string }>`select value from latchkey_meta where name = 'deployment_id'`.execute(store.db)).rows[0]?.value;

async function addAccount(store: AccountStore): Promise<void> {
  await store.repo.createUser({ uid: 'u1', username: 'alice', name: 'alice', email: null, zone: null, phone: null, passwordHash: null, role: 'user' }, 0);
}

describe('deployment ids', () => {
  it('a new database gets an id at its first migration; serve writes it into an empty store', () =>
    withDatabase(async (store) => {
      const kv = new MemoryKv();
      const id = await idOf(store);
      assert.match(id ?? '', /^[0-9a-f]{32}$/);
      assert.equal(await verifyDeployment(kv, store.db, 'serve', NAMES), id);
      assert.equal(await kv.get(DEPLOYMENT_ID_KEY), id);
    }));

  it('two nodes starting at once on an empty store agree (the id is written with NX)', () =>
    withDatabase(async (store) => {
      const kv = new MemoryKv();
      const ids = await Promise.all(Array.from({ length: 10 }, () => verifyDeployment(kv, store.db, 'serve', NAMES)));
      assert.equal(new Set(ids).size, 1);
    }));

  it('a command that touches no session compares but never writes', () =>
    withDatabase(async (store) => {
      const kv = new MemoryKv();
      await verifyDeployment(kv, store.db, 'compare', NAMES);
      assert.equal(await kv.get(DEPLOYMENT_ID_KEY), null);
    }));

  it('a session command pairs an empty store with a database never paired, and refuses one beside a database in use', () =>
    withDatabase(async (store) => {
      await addAccount(store);
      const first = new MemoryKv();
      await verifyDeployment(first, store.db, 'sessions', NAMES);
      assert.equal(await first.get(DEPLOYMENT_ID_KEY), await idOf(store));
      const empty = new MemoryKv();
      await assert.rejects(verifyDeployment(empty, store.db, 'sessions', NAMES), (error: unknown) => {
        assert.ok(error instanceof DeploymentMismatchError);
        assert.match(error.message, /^the session store redis:\/\/:\*\*\*@10\.0\.0\.5:6379 \(prefix lk:\) holds no deployment id/);
        assert.ok(!error.message.includes('hunter2'));
        return true;
      });
      assert.equal(await empty.get(DEPLOYMENT_ID_KEY), null, 'a refused run leaves the store as it was');
      // serve, on the other hand, takes a new or emptied store.
      await verifyDeployment(empty, store.db, 'serve', NAMES);
    }));

  it('a store of another deployment is refused in every mode, naming both stores', () =>
    withDatabase(async (store) => {
      const kv = new MemoryKv();
      await kv.set(DEPLOYMENT_ID_KEY, 'f'.repeat(32));
      for (const mode of ['serve', 'sessions', 'compare'] as const) {
        await assert.rejects(verifyDeployment(kv, store.db, mode, NAMES), (error: unknown) => {
          assert.ok(error instanceof DeploymentMismatchError);
          assert.match(error.message, /redis:\/\/:\*\*\*@10\.0\.0\.5:6379 \(prefix lk:\) belongs to deployment f{32} but the account database postgres:\/\/app:\*\*\*@db\/latchkey to deployment [0-9a-f]{32}/);
          return true;
        });
      }
      assert.equal(await kv.get(DEPLOYMENT_ID_KEY), 'f'.repeat(32));
    }));

  it('a database that held accounts before ids existed counts as paired: the CLI does not adopt whatever store it is given', async () => {
    // Migrations up to 0006 on a database with an account, then 0007: as an upgrade runs them.
    const { Migrator } = await import('kysely/migration');
    const { accountMigrations } = await import('../../src/adapters/db/migrations.ts');
    const { Kysely, SqliteDialect } = await import('kysely');
    const { kyselyNodeSqlite, openNodeSqlite } = await import('../../src/adapters/sqlite/kysely-node-sqlite.ts');
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: kyselyNodeSqlite(openNodeSqlite(':memory:')) }) });
    try {
      const migrator = new Migrator({ db, provider: accountMigrations('sqlite') });
      assert.equal((await migrator.migrateTo('0006_normalized_keys')).error, undefined);
      await sql`insert into users (uid, username, username_lower, name, role, status, created_at, updated_at)
        values ('u1', 'alice', 'alice', 'alice', 'user', 'active', 0, 0)`.execute(db);
      assert.equal((await migrator.migrateToLatest()).error, undefined);
      await assert.rejects(verifyDeployment(new MemoryKv(), db, 'sessions', NAMES), DeploymentMismatchError);
      assert.ok(await verifyDeployment(new MemoryKv(), db, 'serve', NAMES));
    } finally {
      await db.destroy();
    }
  });

  it('a running node writes the id back into a store that lost it', () =>
    withDatabase(async (store) => {
      const kv = new MemoryKv();
      const id = await verifyDeployment(kv, store.db, 'serve', NAMES);
      await kv.del(DEPLOYMENT_ID_KEY);
      const warnings: string[] = [];
      const keeper = keepDeploymentId(kv, id, { warn: (_fields, message) => warnings.push(message) }, 20);
      try {
        for (let waited = 0; (await kv.get(DEPLOYMENT_ID_KEY)) === null && waited < 2000; waited += 20) await new Promise((r) => setTimeout(r, 20));
      } finally {
        await keeper.stop();
      }
      assert.equal(await kv.get(DEPLOYMENT_ID_KEY), id);
      assert.match(warnings[0] ?? '', /lost its deployment id/);
    }));
});

describe('maskUrl', () => {
  const cases: readonly (readonly [string, string])[] = [
    ['postgres://app:s3cret@db:5432/latchkey', 'postgres://app:***@db:5432/latchkey'],
    ['postgres://postgres@127.0.0.1:5432/test', 'postgres://postgres@127.0.0.1:5432/test'],
    ['postgres://db/latchkey?user=app&password=s3cret&sslmode=require', 'postgres://db/latchkey?user=app&password=***&sslmode=require'],
    ['redis://:s3cret@cache:6379/0', 'redis://:***@cache:6379/0'],
    ['redis-cluster://s3cret@a:7000,b:7000', 'redis-cluster://***@a:7000,b:7000'],
    ['rediss-sentinel://user:s3cret@a:26379,b:26379/mymaster', 'rediss-sentinel://user:***@a:26379,b:26379/mymaster'],
    ['sqlite:data/latchkey.db', 'sqlite:data/latchkey.db'],
  ];
  for (const [url, masked] of cases) {
    it(`${masked}`, () => assert.equal(maskUrl(url), masked));
  }
});
