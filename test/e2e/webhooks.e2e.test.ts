/**
 * Webhooks end to end (docs/api.md §13, docs/design.md §3.6): a real receiver checks every
 * signature with the standardwebhooks package and receives each event type, caused by real HTTP
 * calls (register, login, logout, ban and unban by an admin, password change) and by the command
 * line (user create, role change: another process writing the outbox, this node delivering).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/config.ts';
import { createLogger } from '../../src/logger.ts';
import { startServer, type Server } from '../../src/main.ts';
import { describeRun, runCliWith } from '../support/cli-run.ts';
import { call, testDefaults } from '../support/server.ts';
import { startReceiver, TEST_WEBHOOK_SECRET, type Delivery, type Receiver } from '../support/webhook-receiver.ts';

const PASSWORD = 'correct horse battery';
const NEW_PASSWORD = 'another horse, stapled';
const device = (id: string) => ({ device_id: id, device_name: `name-${id}`, device_model: 'model-x' });

describe('webhooks end to end', () => {
  let dir = '';
  let configFile = '';
  let receiver: Receiver;
  let server: Server;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-webhooks-'));
    receiver = await startReceiver();
    const raw = {
      ...testDefaults, data_dir: dir,
      webhooks: [{ url: receiver.url, secret: TEST_WEBHOOK_SECRET, events: ['*'], max_age_seconds: 60, timeout_ms: 2000 }],
    };
    configFile = join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify(raw));
    const config = parseConfig(raw);
    server = await startServer(config, createLogger(config.logLevel));
  });
  after(async () => {
    await server?.close();
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const cli = async (args: string[], input = '') => {
    const run = await runCliWith([...args, '--config', configFile], { input });
    assert.equal(run.code, 0, describeRun(run));
    return run.stdout.trim();
  };
  const of = (uid: string) => receiver.accepted().filter((d) => d.data.uid === uid);
  const waitFor = (uid: string, count: number) => receiver.until(() => of(uid).length >= count, 15_000);

  it('delivers every event type, signed, in order per user, with the data the contract names', async () => {
    // An admin, made by the command line (user.created by cli).
    const adminUid = await cli(['user', 'create', '--username', 'boss', '--password-stdin', '--admin'], `${PASSWORD}\n${PASSWORD}\n`);
    const adminLogin = await call(server, 'POST', '/v1/user/login', { username: 'boss', password: PASSWORD, flag: 2 });
    assert.equal(adminLogin.status, 200);
    const adminToken: string = adminLogin.body.token;

    // Registration: user.created, then session.created for a device seen for the first time.
    const registered = await call(server, 'POST', '/v1/user/register', { username: 'alice', password: PASSWORD, flag: 1, device: device('phone-1') });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    const uid: string = registered.body.uid;
    const firstSid = registered.body.sid ?? null;
    // The same device again (a web session): not new. Then that session signs out.
    const web = await call(server, 'POST', '/v1/user/login', { username: 'alice', password: PASSWORD, flag: 2, device: device('phone-1') });
    assert.equal(web.status, 200);
    assert.equal((await call(server, 'POST', '/v1/user/quit', undefined, web.body.token)).status, 200);
    // Banned by the admin over HTTP: user.banned, and the phone session ends (banned). Then unbanned.
    assert.equal((await call(server, 'PUT', `/v1/manager/users/${uid}/status`, { status: 'banned' }, adminToken)).status, 200);
    assert.equal((await call(server, 'PUT', `/v1/manager/users/${uid}/status`, { status: 'active' }, adminToken)).status, 200);
    // Two sessions; a password change from one ends the other (password_changed).
    const a = await call(server, 'POST', '/v1/user/login', { username: 'alice', password: PASSWORD, flag: 1, device: device('phone-2') });
    const b = await call(server, 'POST', '/v1/user/login', { username: 'alice', password: PASSWORD, flag: 2, device: device('pc-1') });
    assert.equal((await call(server, 'PUT', '/v1/user/updatepassword', { password: PASSWORD, new_password: NEW_PASSWORD }, a.body.token)).status, 200);
    // A role change by the operator's command line, another process: this node delivers it.
    await cli(['user', 'role', uid, 'admin']);

    await waitFor(uid, 12);
    await waitFor(adminUid, 2);
    assert.deepEqual(receiver.badSignatures, []);

    const events = of(uid);
    assert.deepEqual(events.map((d) => d.type), [
      'user.created', 'session.created', 'session.created', 'session.ended', 'user.banned', 'session.ended',
      'user.unbanned', 'session.created', 'session.created', 'user.password_changed', 'session.ended', 'user.role_changed',
    ].slice(0, events.length));
    assert.equal(events.length, 12);
    const [created, phone, webSession, webEnded, banned, phoneEnded, unbanned, sessionA, sessionB, changed, bEnded, role] = events as Delivery[] & { length: 12 };
    assert.deepEqual(created!.data, { uid, username: 'alice', role: 'user', method: 'password', by: 'register' });
    assert.deepEqual(
      { ...phone!.data, ip: typeof phone!.data.ip },
      { uid, sid: phone!.data.sid, device_flag: 1, device_id: 'phone-1', device_name: 'name-phone-1', device_model: 'model-x', method: 'register', ip: 'string', new_device: true },
    );
    if (firstSid !== null) assert.equal(phone!.data.sid, firstSid);
    assert.equal(webSession!.data.new_device, false);
    assert.equal(webSession!.data.method, 'password');
    assert.deepEqual(webEnded!.data, { uid, sid: webSession!.data.sid, device_flag: 2, device_id: 'phone-1', reason: 'logout' });
    assert.deepEqual(banned!.data, { uid, by: `admin:${adminUid}` });
    assert.deepEqual(phoneEnded!.data, { uid, sid: phone!.data.sid, device_flag: 1, device_id: 'phone-1', reason: 'banned' });
    assert.deepEqual(unbanned!.data, { uid, by: `admin:${adminUid}` });
    assert.equal(sessionA!.data.new_device, true);
    assert.equal(sessionB!.data.device_id, 'pc-1');
    assert.deepEqual(changed!.data, { uid, via: 'change', sid: sessionA!.data.sid });
    assert.deepEqual(bEnded!.data, { uid, sid: sessionB!.data.sid, device_flag: 2, device_id: 'pc-1', reason: 'password_changed' });
    assert.deepEqual(role!.data, { uid, role: 'admin', by: 'cli' });
    assert.ok(b.status === 200 && a.status === 200);

    const admin = of(adminUid);
    assert.deepEqual(admin.map((d) => d.type), ['user.created', 'session.created']);
    assert.deepEqual(admin[0]!.data, { uid: adminUid, username: 'boss', role: 'admin', method: 'password', by: 'cli' });

    // Ids are unique per event; body timestamps never go back within a user.
    assert.equal(new Set(events.map((d) => d.id)).size, events.length);
    assert.ok(events.every((d, i) => i === 0 || d.at >= events[i - 1]!.at));
    const metrics = await (await fetch(server.metricsUrl!)).text();
    assert.match(metrics, /latchkey_webhook_delivered_total\{webhook="[0-9a-f]{16}"\} \d+/);
    // Nothing owed any more: the gauges say so after the worker's last pass.
    let gauges = '';
    for (let i = 0; i < 50 && !/^latchkey_webhook_pending 0$/m.test(gauges); i++) {
      gauges = await (await fetch(server.metricsUrl!)).text();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.match(gauges, /^latchkey_webhook_pending 0$/m);
    assert.match(gauges, /^latchkey_webhook_lag_seconds 0$/m);
  });
});

describe('webhooks not configured', () => {
  it('writes no outbox row and runs no delivery worker', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-nowebhooks-'));
    const config = parseConfig({ ...testDefaults, data_dir: dir });
    const server = await startServer(config, createLogger(config.logLevel));
    try {
      assert.equal(server.runtime.outbox, null);
      assert.equal(server.runtime.events.enabled, false);
      const registered = await call(server, 'POST', '/v1/user/register', { username: 'quiet', password: PASSWORD, flag: 0, device: device('d') });
      assert.equal(registered.status, 201);
      assert.equal((await call(server, 'POST', '/v1/user/quit', undefined, registered.body.token)).status, 200);
      const rows = await server.runtime.accountDb.selectFrom('webhook_outbox').selectAll().execute();
      assert.deepEqual(rows, []);
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
