/**
 * The CLI and `serve` act only on a session store and an account database of one deployment.
 * Real PostgreSQL, Redis (each deployment under its own store_prefix) and SQLite.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import { call, startTestServer, type TestServer } from '../support/server.ts';
import { describeRun, runLatchkeyCli as runCli, type CliRun } from '../support/cli-run.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { deleteRedisKeys } from '../support/redis.ts';
import { REDIS_URL, skipUnless, uniquePrefix } from '../support/services.ts';

const PASSWORD = 'correct horse';
const skip = (await skipUnless('redis')) || (await skipUnless('postgres'));

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-deploy-'));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A URL with a password, so that the refusal is seen to mask it (the test server trusts anyone). */
function withPassword(url: string): string {
  const parsed = new URL(url);
  parsed.password = 'hunter2';
  return parsed.toString();
}

function assertOneLineRefusal(run: CliRun, ...named: RegExp[]): void {
  assert.equal(run.code, 1, describeRun(run));
  const lines = run.stderr.split('\n').filter((line) => line !== '');
  assert.equal(lines.length, 1, `exactly one line on stderr:\n${run.stderr}`);
  for (const name of named) assert.match(lines[0] ?? '', name);
  assert.ok(!run.stderr.includes('hunter2'), 'no password is printed');
  assert.ok(!run.stdout.includes('listening'), 'serve did not start');
}

async function deploymentIdOf(db: TestDatabase): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    const result = await client.query<{ value: string }>("select value from latchkey_meta where name = 'deployment_id'");
    return result.rows[0]?.value;
  } finally {
    await client.end();
  }
}

async function storedDeploymentId(prefix: string): Promise<string | null> {
  const redis = new Redis(REDIS_URL);
  try {
    return await redis.get(`${prefix}deployment-id`);
  } finally {
    redis.disconnect();
  }
}

describe('a PostgreSQL + Redis deployment and the CLI pointed at it', { skip }, () => {
  let db: TestDatabase;
  let other: TestDatabase;
  const prefix = uniquePrefix('deploy');
  let server: TestServer;
  let pairEnv: Record<string, string>;

  before(async () => {
    [db, other] = await Promise.all([createTestDatabase(), createTestDatabase()]);
    server = await startTestServer({ store: REDIS_URL, store_prefix: prefix, db: db.url });
    pairEnv = { LATCHKEY_DB: withPassword(db.url), LATCHKEY_STORE: REDIS_URL, LATCHKEY_STORE_PREFIX: prefix, LATCHKEY_LOG_LEVEL: 'silent' };
  });
  after(async () => {
    await server?.stop();
    await Promise.all([db?.drop(), other?.drop(), deleteRedisKeys(prefix)]);
  });

  async function loggedInUser(username: string): Promise<{ uid: string; token: string }> {
    const answer = await call(server, 'POST', '/v1/user/register', { username, password: PASSWORD, flag: 1 });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    return { uid: answer.body.uid, token: answer.body.token };
  }

  const isValid = async (token: string) => (await call(server, 'GET', '/v1/user/current', undefined, token)).status === 200;

  it('the server wrote the database\'s deployment id into its store at start', async () => {
    const id = await deploymentIdOf(db);
    assert.match(id ?? '', /^[0-9a-f]{32}$/);
    assert.equal(await storedDeploymentId(prefix), id);
  });

  it('user ban with LATCHKEY_DB but without LATCHKEY_STORE refuses in one line and bans nobody', async () => {
    const erin = await loggedInUser('erin');
    // The default store: a fresh SQLite file in the data directory, not the Redis the sessions are in.
    const run = await runCli(['user', 'ban', erin.uid], { LATCHKEY_DB: withPassword(db.url), LATCHKEY_DATA_DIR: tempDir() });
    assertOneLineRefusal(run, /^latchkey: the session store sqlite:\S+latchkey\.db holds no deployment id/, /postgres:\/\/postgres:\*\*\*@127\.0\.0\.1/, /LATCHKEY_STORE/);
    assert.equal(run.stdout, '', 'no "banned; revoked 0 session(s)"');
    assert.equal((await server.runtime.accounts.findByUid(erin.uid))?.status, 'active', 'the ban was not set either');
    assert.ok(await isValid(erin.token));
  });

  it('every other command refuses that store as well (the store keeps no id from a refused run)', async () => {
    const erin = await server.runtime.accounts.findByUsername('erin');
    assert.ok(erin);
    const env = { LATCHKEY_DB: withPassword(db.url), LATCHKEY_DATA_DIR: tempDir() };
    for (const args of [['sessions', 'revoke-all', erin.uid], ['user', 'unban', erin.uid], ['user', 'role', erin.uid, 'admin'], ['user', 'ban', erin.uid]]) {
      assertOneLineRefusal(await runCli(args, env), /holds no deployment id/);
    }
  });

  it('the same database and store keep working: the ban ends the sessions on the running server', async () => {
    const fay = await loggedInUser('fay');
    const run = await runCli(['user', 'ban', fay.uid], pairEnv);
    assert.equal(run.code, 0, describeRun(run));
    assert.equal(run.stdout, 'banned; revoked 1 session(s)\n');
    assert.equal(await isValid(fay.token), false);
    const found = await runCli(['user', 'find', 'fay'], pairEnv);
    assert.equal(found.stdout, `${fay.uid}\tfay\tbanned\n`, describeRun(found));
    const tail = await runCli(['audit', 'tail', '--uid', fay.uid, '--limit', '1'], pairEnv);
    assert.match(tail.stdout, / ban ok uid=/, describeRun(tail));
  });

  it('the store of this deployment with the database of another: every command and serve refuse, naming both', async () => {
    const env = { ...pairEnv, LATCHKEY_DB: withPassword(other.url), LATCHKEY_DATA_DIR: tempDir(), LATCHKEY_PORT: '0', LATCHKEY_METRICS_PORT: '0' };
    const both = [/the session store redis:\/\/127\.0\.0\.1:6379 \(prefix lktest:deploy:\S+\) belongs to deployment [0-9a-f]{32}/, new RegExp(`account database postgres://postgres:\\*\\*\\*@127\\.0\\.0\\.1:5432/${other.name} to deployment`)];
    const runs = await Promise.all([
      runCli(['serve'], env),
      runCli(['user', 'ban', 'someone'], env),
      runCli(['user', 'find', 'fay'], env),
      runCli(['user', 'create', '--username', 'stray', '--password-stdin'], env, undefined, PASSWORD),
      runCli(['sessions', 'revoke-all', 'someone'], env),
      runCli(['audit', 'tail'], env),
      runCli(['migrate'], env),
    ]);
    for (const run of runs) assertOneLineRefusal(run, ...both);
    assert.notEqual(await deploymentIdOf(other), await storedDeploymentId(prefix));
    const stray = await startTestServer({ store: REDIS_URL, store_prefix: prefix, db: other.url }).then(
      async (started) => {
        await started.stop();
        return 'started';
      },
      (error: unknown) => (error as Error).message,
    );
    assert.match(stray, /belongs to deployment/, 'an in-process start refuses too');
  });
});

describe('a fresh pair initialises; deployments sharing one Redis stay apart by store_prefix', { skip }, () => {
  let db: TestDatabase;
  const prefix = uniquePrefix('fresh');
  after(async () => {
    await Promise.all([db?.drop(), deleteRedisKeys(prefix)]);
  });

  it('a session command on a new database and an empty store pairs them; serve then starts on them', async () => {
    db = await createTestDatabase();
    const env = { LATCHKEY_DB: db.url, LATCHKEY_STORE: REDIS_URL, LATCHKEY_STORE_PREFIX: prefix, LATCHKEY_LOG_LEVEL: 'silent' };
    const created = await runCli(['user', 'create', '--username', 'root', '--admin', '--password-stdin'], env, undefined, PASSWORD);
    assert.equal(created.code, 0, describeRun(created));
    assert.equal(await storedDeploymentId(prefix), null, 'a command that touches no session writes no id');
    const revoked = await runCli(['sessions', 'revoke-all', created.stdout.trim()], env);
    assert.equal(revoked.code, 0, describeRun(revoked));
    assert.equal(revoked.stdout, 'revoked 0 session(s)\n');
    assert.equal(await storedDeploymentId(prefix), await deploymentIdOf(db));
    const server = await startTestServer({ store: REDIS_URL, store_prefix: prefix, db: db.url });
    try {
      assert.equal((await call(server, 'POST', '/v1/user/login', { username: 'root', password: PASSWORD, flag: 1 })).status, 200);
    } finally {
      await server.stop();
    }
  });
});

describe('SQLite deployments: a data directory with another deployment\'s store file', () => {
  it('is refused, and each keeps working with its own', async () => {
    const [a, b] = [tempDir(), tempDir()];
    for (const dir of [a, b]) {
      const run = await runCli(['sessions', 'revoke-all', 'nobody'], { LATCHKEY_DATA_DIR: dir });
      assert.equal(run.code, 0, describeRun(run));
    }
    const mixed = await runCli(['sessions', 'revoke-all', 'nobody'], { LATCHKEY_DATA_DIR: a, LATCHKEY_STORE: `sqlite:${join(b, 'latchkey.db')}` });
    assertOneLineRefusal(mixed, /belongs to deployment [0-9a-f]{32} but the account database sqlite:\S+ to deployment [0-9a-f]{32}/);
  });
});
