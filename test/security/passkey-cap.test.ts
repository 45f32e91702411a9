/**
 * The 20-passkey cap holds under concurrent registrations (docs/security.md, the passkey-cap hole):
 * a stolen, stepped-up session — or many of them — registering passkeys at once cannot take an
 * account past 20. The count and the insert are one atomic step in the account database, proven
 * over HTTP on SQLite and on PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MAX_PASSKEYS } from '../../src/flows/mfa/passkeys.ts';
import { startCodeTestServer, type CodeTestServer } from '../support/codes.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { call } from '../support/server.ts';
import { skipUnless } from '../support/services.ts';
import { SoftAuthenticator } from '../support/webauthn.ts';

const PASSWORD = 'correct horse battery';
const SESSIONS = 40;

function capSuite(db: () => Promise<Record<string, unknown>>, cleanUp: () => Promise<void>): void {
  let server: CodeTestServer;
  let origin: string;
  before(async () => {
    // Room for 40 Web sessions of one user, each with a registration of its own in flight, and for
    // the 40 parallel password logins that open them.
    server = await startCodeTestServer({
      ...(await db()), device_policies: { web: { mode: 'multi', cap: 200 } }, login_throttle: { per_account_ip: 1000, per_account: 100_000 },
    });
    origin = server.url.replace('127.0.0.1', 'localhost');
  });
  after(async () => {
    await server?.stop();
    await cleanUp();
  });

  /** A registration challenge is bound to its session, one at a time: each racer is its own session. */
  async function racers(username: string, count: number): Promise<Array<{ token: string; credential: Record<string, unknown> }>> {
    assert.equal((await call(server, 'POST', '/v1/user/register', { username, password: PASSWORD })).status, 201);
    return Promise.all(Array.from({ length: count }, async () => {
      const login = await call(server, 'POST', '/v1/user/login', { username, password: PASSWORD, flag: 1 });
      assert.equal(login.status, 200, JSON.stringify(login.body));
      const options = await call(server, 'POST', '/v1/user/passkeys/register/options', undefined, login.body.token);
      assert.equal(options.status, 200, JSON.stringify(options.body));
      return { token: login.body.token, credential: new SoftAuthenticator().create(options.body, { origin }) };
    }));
  }

  /**
   * Every call to the passkey table waits a few milliseconds first, as a database across a network
   * would: the requests' calls then overlap however the database is reached (in-process SQLite
   * answers so fast that a check made apart from its insert is rarely caught).
   */
  function slowDatabase(): () => void {
    const repo = server.runtime.passkeys.repo as unknown as Record<string, unknown>;
    const names = ['add', 'count', 'list', 'find'] as const;
    for (const name of names) {
      const original = repo[name] as (...args: unknown[]) => Promise<unknown>;
      repo[name] = async (...args: unknown[]) => {
        await new Promise((resolve) => setTimeout(resolve, 2 + Math.floor(Math.random() * 4)));
        return original.apply(server.runtime.passkeys.repo, args);
      };
    }
    return () => { for (const name of names) delete repo[name]; };
  }

  it(`${SESSIONS} registrations at once from ${SESSIONS} sessions store exactly ${MAX_PASSKEYS}; the rest are 409`, async () => {
    for (let round = 0; round < 4; round++) {
      const pending = await racers(`pk-cap-${round}`, SESSIONS);
      const restore = round % 2 === 1 ? slowDatabase() : () => undefined;
      const answers = await Promise.all(pending.map(({ token, credential }) => call(server, 'POST', '/v1/user/passkeys/register/verify', credential, token)))
        .finally(restore);
      const statuses = answers.map((a) => a.status);
      assert.equal(statuses.filter((s) => s === 200).length, MAX_PASSKEYS, `round ${round}: ${statuses}`);
      assert.ok(answers.every((a) => a.status === 200 || (a.status === 409 && a.body.code === 'conflict')), `round ${round}: ${statuses}`);
      const listed = await call(server, 'GET', '/v1/user/passkeys', undefined, pending[0]!.token);
      assert.equal(listed.body.passkeys.length, MAX_PASSKEYS, `round ${round}`);
    }
  });

  it('a full account refuses the next one until a passkey is removed', async () => {
    const [first, ...rest] = await racers('pk-cap-full', MAX_PASSKEYS + 1);
    const last = rest.pop();
    assert.ok(first !== undefined && last !== undefined);
    for (const { token, credential } of [first, ...rest]) {
      assert.equal((await call(server, 'POST', '/v1/user/passkeys/register/verify', credential, token)).status, 200);
    }
    const refused = await call(server, 'POST', '/v1/user/passkeys/register/verify', last.credential, last.token);
    assert.deepEqual([refused.status, refused.body.code], [409, 'conflict']);
    assert.match(refused.body.msg, /at most 20 passkeys/);
    const early = await call(server, 'POST', '/v1/user/passkeys/register/options', undefined, last.token);
    assert.equal(early.status, 409, 'options already say so');
    const removed = await call(server, 'DELETE', `/v1/user/passkeys/${String(first.credential.id)}`, undefined, first.token);
    assert.equal(removed.status, 200);
    const options = await call(server, 'POST', '/v1/user/passkeys/register/options', undefined, last.token);
    const stored = await call(server, 'POST', '/v1/user/passkeys/register/verify', new SoftAuthenticator().create(options.body, { origin }), last.token);
    assert.equal(stored.status, 200, JSON.stringify(stored.body));
  });
}

describe('the passkey cap under concurrent registrations (SQLite)', () => {
  capSuite(async () => ({}), async () => undefined);
});

const postgresSkip = await skipUnless('postgres');
describe('the passkey cap under concurrent registrations (PostgreSQL)', { skip: postgresSkip }, () => {
  let database: TestDatabase | undefined;
  capSuite(async () => {
    database = await createTestDatabase();
    return { db: database.url };
  }, async () => database?.drop());
});
