/**
 * The audit trail: the security events a login, a logout and a policy revocation leave (with ip
 * and user agent, never a secret), `latchkey audit tail` and `latchkey user role`, and pruning
 * after the retention.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AUDIT_PRUNE_LOCK_KEY, pruneAudit } from '../../src/ops/audit-pruner.ts';
import { createAccount } from '../../src/flows/password/password-flow.ts';
import { call, startTestServer, type TestServer } from '../support/server.ts';
import { describeRun, runLatchkeyCli } from '../support/cli-run.ts';

const PASSWORD = 'correct horse battery';
const DAY = 86_400_000;

describe('the audit trail', () => {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-audit-'));
  const configPath = join(dir, 'config.json');
  let server: TestServer;

  before(async () => {
    const config = { db: `sqlite:${join(dir, 'accounts.db')}`, store: `sqlite:${join(dir, 'kv.db')}`, password: { memory_cost: 1024, time_cost: 1 } };
    writeFileSync(configPath, JSON.stringify(config));
    server = await startTestServer(config);
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const events = (uid: string) => server.runtime.accounts.queryAudit({ uid, limit: 50 });

  it('records logins (ok and failed, with the method), logouts and the phone a new login replaced, with ip and user agent', async () => {
    const registered = await call(server, 'POST', '/v1/user/register', { username: 'auditee', password: PASSWORD, flag: 0 });
    const uid: string = registered.body.uid;
    await call(server, 'POST', '/v1/user/login', { username: 'auditee', password: 'not the password', flag: 1 });
    const second = await call(server, 'POST', '/v1/user/login', { username: 'auditee', password: PASSWORD, flag: 0 });
    await call(server, 'POST', '/v1/user/quit', undefined, second.body.token);

    const trail = (await events(uid)).reverse().map((e) => [e.type, e.result, e.reason]);
    assert.deepEqual(trail, [
      ['register', 'ok', null],
      ['login', 'ok', 'register'],
      ['login', 'fail', 'invalid_credentials'],
      ['revoke', 'ok', 'replaced'],
      ['login', 'ok', 'password'],
      ['logout', 'ok', null],
    ]);
    for (const event of await events(uid)) {
      // A revocation by policy comes from no request of the revoked device's: it has no address.
      assert.equal(event.ip, event.reason === 'replaced' ? null : '127.0.0.1');
      assert.ok(!JSON.stringify(event).includes(PASSWORD), 'never the password');
      assert.ok(!JSON.stringify(event).includes(second.body.token), 'never a token');
    }
  });

  it('`latchkey user role` promotes and is audited; `latchkey audit tail --uid --limit` prints the latest events, oldest first', async () => {
    const registered = await call(server, 'POST', '/v1/user/register', { username: 'tailed', password: PASSWORD, flag: 1 });
    const uid: string = registered.body.uid;
    const role = await runLatchkeyCli(['user', 'role', uid, 'admin', '--config', configPath]);
    assert.equal(role.code, 0, describeRun(role));
    assert.equal((await server.runtime.accounts.findByUid(uid))?.role, 'admin');
    const bad = await runLatchkeyCli(['user', 'role', uid, 'root', '--config', configPath]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /admin or user/);

    const tail = await runLatchkeyCli(['audit', 'tail', '--uid', uid, '--limit', '2', '--config', configPath]);
    assert.equal(tail.code, 0, describeRun(tail));
    const lines = tail.stdout.trim().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0] ?? '', /^\d{4}-\d\d-\d\dT[\d:.]+Z login ok uid=\w+ sid=[\w-]+ ip=127\.0\.0\.1 reason="register"/);
    assert.match(lines[1] ?? '', /^\S+ role_change ok uid=\w+ ip=cli reason="cli; admin" ua="latchkey-cli"$/);
    assert.ok(!tail.stdout.includes(registered.body.token));

    const everyone = await runLatchkeyCli(['audit', 'tail', '--config', configPath]);
    assert.equal(everyone.code, 0);
    assert.ok(everyone.stdout.split('\n').length > 2);
    assert.equal((await runLatchkeyCli(['audit', 'tail', '--limit', 'lots', '--config', configPath])).code, 1);
  });

  it('a ban and a revoke-all leave one reason format whether an admin or the command line did it (docs/api.md §9)', async () => {
    await createAccount(server.runtime, { username: 'auditor', password: PASSWORD }, 'admin');
    const admin = await call(server, 'POST', '/v1/user/login', { username: 'auditor', password: PASSWORD, flag: 1 });
    const target = await call(server, 'POST', '/v1/user/register', { username: 'banned', password: PASSWORD, flag: 1 });
    const uid: string = target.body.uid;
    const http = (method: string, path: string, body?: unknown) => call(server, method, path, body, admin.body.token);
    const cli = async (...args: string[]) => assert.equal((await runLatchkeyCli([...args, '--config', configPath])).code, 0);

    assert.equal((await http('PUT', `/v1/manager/users/${uid}/status`, { status: 'banned' })).status, 200);
    assert.equal((await http('PUT', `/v1/manager/users/${uid}/status`, { status: 'active' })).status, 200);
    await cli('user', 'ban', uid);
    await cli('user', 'unban', uid);
    await call(server, 'POST', '/v1/user/login', { username: 'banned', password: PASSWORD, flag: 2 });
    assert.equal((await http('DELETE', `/v1/manager/users/${uid}/sessions`)).status, 200);
    await call(server, 'POST', '/v1/user/login', { username: 'banned', password: PASSWORD, flag: 2 });
    await cli('sessions', 'revoke-all', uid);

    const rows = (await events(uid)).reverse().filter((e) => e.type !== 'login' && e.type !== 'register').map((e) => [e.type, e.reason]);
    const by = `admin:${admin.body.uid}`;
    assert.deepEqual(rows, [
      ['ban', `${by}; 1 session(s) revoked`],
      ['unban', `${by}; 0 session(s) revoked`],
      ['ban', 'cli; 0 session(s) revoked'],
      ['unban', 'cli; 0 session(s) revoked'],
      ['revoke', `${by}; all:1`],
      ['revoke', 'cli; all:1'],
    ]);
  });

  it('prunes events past the retention, once per interval across nodes, and keeps the rest', async () => {
    const { accounts, clock } = server.runtime;
    const now = clock.now();
    await accounts.appendAudit({ type: 'login', uid: 'pruned', sid: null, ip: null, userAgent: null, result: 'ok', reason: 'old', at: now - 91 * DAY });
    await accounts.appendAudit({ type: 'login', uid: 'pruned', sid: null, ip: null, userAgent: null, result: 'ok', reason: 'recent', at: now - 89 * DAY });

    // The node pruned once at start and holds the lock for the hour: as if that hour had passed.
    await server.runtime.kv.del(AUDIT_PRUNE_LOCK_KEY);
    assert.ok(((await pruneAudit(server.runtime, 90, 60_000)) ?? 0) >= 1);
    assert.deepEqual((await events('pruned')).map((e) => e.reason), ['recent']);
    // Another node (or this one again) within the interval leaves it to the one that pruned.
    assert.equal(await pruneAudit(server.runtime, 90, 60_000), null);
    assert.deepEqual((await events('pruned')).map((e) => e.reason), ['recent']);
  });
});
