/**
 * Admins cannot ban (or demote) each other into having no admin: two simultaneous bans, a ring of
 * three, or a thief holding one admin's token racing the others. The check and the change are one
 * atomic step in the account database, proven on SQLite and on PostgreSQL.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setAccountStatus, setRole } from '../../src/core/accounts.ts';
import { LatchkeyError } from '../../src/core/errors.ts';
import { createAccount } from '../../src/flows/password/password-flow.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { skipUnless } from '../support/services.ts';
import { describeRun, runLatchkeyCli } from '../support/cli-run.ts';
import { call, startTestServer, type Answer, type TestServer } from '../support/server.ts';

const PASSWORD = 'correct horse battery';
const ROUNDS = 8;

interface Admin {
  readonly uid: string;
  readonly token: string;
}

let counter = 0;

async function newAdmin(server: TestServer): Promise<Admin> {
  const username = `admin${++counter}`;
  const user = await createAccount(server.runtime, { username, password: PASSWORD }, 'admin');
  const login = await call(server, 'POST', '/v1/user/login', { username, password: PASSWORD, flag: 1 });
  assert.equal(login.status, 200, JSON.stringify(login.body));
  return { uid: user.uid, token: login.body.token };
}

function ban(server: TestServer, by: Admin, uid: string): Promise<Answer> {
  return fetch(`${server.url}/v1/manager/users/${uid}/status`, {
    method: 'PUT', headers: { token: by.token, 'content-type': 'application/json' }, body: JSON.stringify({ status: 'banned' }),
  }).then(async (response) => ({ status: response.status, body: await response.json(), headers: response.headers }));
}

async function activeAdmins(server: TestServer): Promise<string[]> {
  const { users } = await server.runtime.accounts.listUsers({ offset: 0, limit: 1000 });
  return users.filter((user) => user.role === 'admin' && user.status === 'active').map((user) => user.uid);
}

function lastAdminSuite(overrides: () => Promise<Record<string, unknown>>, cleanUp: () => Promise<void>): void {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(await overrides());
  });
  after(async () => {
    await server.stop();
    await cleanUp();
  });

  it('two admins banning each other at once: one ban lands, the other is refused, one admin stays', async () => {
    let survivor = await newAdmin(server);
    for (let round = 0; round < ROUNDS; round++) {
      const other = await newAdmin(server);
      assert.equal((await activeAdmins(server)).length, 2);
      const [first, second] = await Promise.all([ban(server, survivor, other.uid), ban(server, other, survivor.uid)]);
      const admins = await activeAdmins(server);
      assert.equal(admins.length, 1, `round ${round}: answers ${first.status} ${second.status}, active admins ${admins.length}`);
      const refused = [first, second].filter((answer) => answer.status !== 200);
      assert.equal(refused.length, 1, `round ${round}: exactly one ban lands (${first.status}, ${second.status})`);
      const [loser] = refused;
      // Refused because it would leave nobody (409), or because its caller was banned first (401/403).
      assert.ok(loser !== undefined && [401, 403, 409].includes(loser.status), `round ${round}: ${loser?.status}`);
      if (loser.status === 409) {
        assert.equal(loser.body.code, 'conflict');
        assert.match(loser.body.msg ?? loser.body.message ?? JSON.stringify(loser.body), /no active admin/i);
      }
      survivor = admins[0] === survivor.uid ? survivor : other;
    }
  });

  it('a ring of three bans at once leaves an admin', async () => {
    const admins = await activeAdmins(server);
    const [a, b] = [await newAdmin(server), await newAdmin(server)];
    const c = (await activeAdmins(server)).find((uid) => uid !== a.uid && uid !== b.uid);
    assert.ok(c !== undefined && admins.includes(c));
    // c's token: sign in again as whoever c is.
    const { users } = await server.runtime.accounts.listUsers({ offset: 0, limit: 1000 });
    const cName = users.find((user) => user.uid === c)?.username ?? '';
    const cLogin = await call(server, 'POST', '/v1/user/login', { username: cName, password: PASSWORD, flag: 1 });
    const cAdmin: Admin = { uid: c, token: cLogin.body.token };
    await Promise.all([ban(server, a, b.uid), ban(server, b, cAdmin.uid), ban(server, cAdmin, a.uid)]);
    assert.ok((await activeAdmins(server)).length >= 1);
  });

  it('the core refuses to ban or demote the last active admin, also when raced with a ban', async () => {
    const before = await activeAdmins(server);
    assert.equal(before.length >= 1, true);
    const extra = await newAdmin(server);
    const [last] = before;
    assert.ok(last !== undefined);
    const outcomes = await Promise.allSettled([
      setRole(server.runtime, last, 'user'),
      setAccountStatus(server.runtime, extra.uid, 'banned'),
      ...before.slice(1).map((uid) => setAccountStatus(server.runtime, uid, 'banned')),
    ]);
    assert.ok((await activeAdmins(server)).length >= 1, JSON.stringify(outcomes.map((o) => o.status)));
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') {
        assert.ok(outcome.reason instanceof LatchkeyError && outcome.reason.code === 'conflict', String(outcome.reason));
      }
    }
    const [only] = await activeAdmins(server);
    assert.ok(only !== undefined);
    await assert.rejects(setRole(server.runtime, only, 'user'), (error: unknown) => error instanceof LatchkeyError && error.status === 409);
    await assert.rejects(setAccountStatus(server.runtime, only, 'banned'), (error: unknown) => error instanceof LatchkeyError && error.status === 409);
    // Unbanning, promoting and banning a plain user are untouched by the rule.
    const plain = await createAccount(server.runtime, { username: `plain${++counter}`, password: PASSWORD }, 'user');
    assert.equal(await setAccountStatus(server.runtime, plain.uid, 'banned'), 0);
    assert.equal(await setAccountStatus(server.runtime, plain.uid, 'active'), 0);
    await setRole(server.runtime, plain.uid, 'admin');
    await setRole(server.runtime, only, 'user');
    assert.deepEqual(await activeAdmins(server), [plain.uid]);
    // The operator's override: made anyway, and said so.
    let warned = 0;
    await setAccountStatus(server.runtime, plain.uid, 'banned', { allowLastAdmin: () => warned++ });
    assert.equal(warned, 1);
    assert.deepEqual(await activeAdmins(server), []);
  });
}

describe('the operator\'s CLI may leave no admin, and warns', () => {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-hardening-admin-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('latchkey user role UID user on the only admin is done, with a warning on stderr', async () => {
    const env = { LATCHKEY_DATA_DIR: dir, LATCHKEY_LOG_LEVEL: 'silent' };
    const created = await runLatchkeyCli(['user', 'create', '--username', 'root', '--password', PASSWORD, '--admin'], env);
    assert.equal(created.code, 0, describeRun(created));
    const uid = created.stdout.trim();
    const demoted = await runLatchkeyCli(['user', 'role', uid, 'user'], env);
    assert.equal(demoted.code, 0, describeRun(demoted));
    assert.match(demoted.stderr, /warning: no active admin is left/);
    const promoted = await runLatchkeyCli(['user', 'role', uid, 'admin'], env);
    assert.equal(promoted.code, 0, describeRun(promoted));
    assert.equal(promoted.stderr, '');
  });
});

describe('the last admin cannot be banned away (SQLite)', () => {
  lastAdminSuite(async () => ({}), async () => {});
});

const postgresSkip = await skipUnless('postgres');
describe('the last admin cannot be banned away (PostgreSQL)', { skip: postgresSkip }, () => {
  let database: TestDatabase | undefined;
  lastAdminSuite(async () => {
    database = await createTestDatabase();
    return { db: database.url };
  }, async () => {
    await database?.drop();
  });
});
