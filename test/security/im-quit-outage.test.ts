/**
 * Hole 11: a ban or logout during a long IM outage must not be forgotten. The device_quit retry
 * queue used to give up after `im.quit_retry.max_attempts`: the banned user's IM token then kept
 * working at WuKongIM for good (WuKongIM's tokens have no lifetime of their own), and the Web
 * session left behind by a logout answered 503 on GET /v1/user/im_token until some new login.
 * Here the WuKongIM double stays down well past max_attempts, then comes back.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createAccount } from '../../src/flows/password/password-flow.ts';
import { imTokenKey } from '../../src/core/sessions/keys.ts';
import { call, type Answer } from '../support/server.ts';
import { MANAGER_TOKEN, imConfig, startImNode, type ImTestNode } from '../support/im-node.ts';
import { WukongImDouble } from '../support/wukongim-double.ts';

const PASSWORD = 'correct horse battery';
const APP = 0;
const WEB = 1;
const MAX_ATTEMPTS = 2;

let counter = 0;
const uniqueName = (label: string) => `${label}${process.pid}x${++counter}`;

function login(node: ImTestNode, username: string, flag: number, deviceId: string): Promise<Answer> {
  return call(node, 'POST', '/v1/user/login', { username, password: PASSWORD, flag, device: { device_id: deviceId, device_name: deviceId, device_model: 'test' } });
}

async function loggedIn(node: ImTestNode, username: string, flag: number, deviceId: string): Promise<{ token: string; imToken: string }> {
  const answer = await login(node, username, flag, deviceId);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return { token: answer.body.token, imToken: answer.body.im_token };
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 8_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

/** How many device_quit calls for this user reached the double (answered or not). */
function quitsOf(double: WukongImDouble, uid: string): number {
  return double.callsTo('/user/device_quit').filter((c) => c.body.uid === uid).length;
}

describe('an owed device_quit outlives any IM outage', () => {
  let double: WukongImDouble;
  let node: ImTestNode;
  let admin: { token: string };

  before(async () => {
    double = await WukongImDouble.start({ managerToken: MANAGER_TOKEN });
    // Small intervals keep the test fast; a tiny max_attempts is passed within a second.
    node = await startImNode(double, { im: { ...imConfig(double), quit_retry: { interval_ms: 50, max_attempts: MAX_ATTEMPTS } } });
    const adminName = uniqueName('boss');
    await createAccount(node.runtime, { username: adminName, password: PASSWORD }, 'admin');
    admin = await loggedIn(node, adminName, WEB, 'admin-browser');
  });
  beforeEach(() => double.recover());
  after(async () => {
    await node?.stop();
    await double?.close();
  });

  it('a ban while WuKongIM is down past max_attempts says the IM step is owed, and the device_quit lands once it is back', async () => {
    const name = uniqueName('banned');
    const { uid } = await createAccount(node.runtime, { username: name, password: PASSWORD });
    const [phone, browser] = await Promise.all([loggedIn(node, name, APP, 'phone'), loggedIn(node, name, WEB, 'browser')]);
    const connections = [double.connect(uid, APP, phone.imToken), double.connect(uid, WEB, browser.imToken)];
    assert.ok(connections.every((c) => c !== null));

    double.fail({ kind: 'status', status: 503 });
    const ban = await call(node, 'PUT', `/v1/manager/users/${uid}/status`, { status: 'banned' }, admin.token);
    assert.equal(ban.status, 200, JSON.stringify(ban.body));
    assert.equal(ban.body.revoked, 2);
    assert.equal(ban.body.im, 'owed', 'the answer says WuKongIM has not been told yet');
    const answers = await Promise.all([phone.token, browser.token].map((token) => call(node, 'GET', '/v1/user/current', undefined, token)));
    assert.deepEqual(answers.map((a) => a.status), [401, 401], 'the API sessions are over regardless');

    // Well past max_attempts: each flag's job has failed more than MAX_ATTEMPTS times.
    const before = quitsOf(double, uid);
    await until('the quit is retried past max_attempts', () => quitsOf(double, uid) >= before + 2 * (MAX_ATTEMPTS + 2));
    assert.ok(connections.every((c) => c?.kickedBy === null), 'not yet: WuKongIM is down');

    double.recover();
    await until('the owed device_quit reaches WuKongIM', () => connections.every((c) => c?.kickedBy === 'device_quit'));
    assert.equal(double.connect(uid, APP, phone.imToken), null, 'the banned phone cannot reconnect');
    assert.equal(double.connect(uid, WEB, browser.imToken), null, 'the banned browser cannot reconnect');
    await until('nothing is owed for the user', async () => (await node.kv.get(imTokenKey(uid, APP))) === null && (await node.kv.get(imTokenKey(uid, WEB))) === null);
  });

  it('a ban while WuKongIM is down reaches a token latchkey no longer holds (its key expired) once WuKongIM is back', async () => {
    const name = uniqueName('forgotten');
    const { uid } = await createAccount(node.runtime, { username: name, password: PASSWORD });
    const browser = await loggedIn(node, name, WEB, 'browser');
    const connection = double.connect(uid, WEB, browser.imToken);
    // As when the key's TTL ran out with its sessions: WuKongIM still holds the token, latchkey not.
    await node.kv.del(imTokenKey(uid, WEB));

    double.fail({ kind: 'reset' });
    const ban = await call(node, 'PUT', `/v1/manager/users/${uid}/status`, { status: 'banned' }, admin.token);
    assert.equal(ban.status, 200, JSON.stringify(ban.body));
    assert.equal(ban.body.im, 'owed', 'the ban\'s device_quit did not land');
    double.recover();
    await until('the owed device_quit reaches WuKongIM', () => connection?.kickedBy === 'device_quit');
    assert.equal(double.connect(uid, WEB, browser.imToken), null);
  });

  it('a ban while WuKongIM answers says im "ok"', async () => {
    const name = uniqueName('bannedok');
    const { uid } = await createAccount(node.runtime, { username: name, password: PASSWORD });
    await loggedIn(node, name, WEB, 'browser');
    const ban = await call(node, 'PUT', `/v1/manager/users/${uid}/status`, { status: 'banned' }, admin.token);
    assert.deepEqual(ban.body, { status: 200, revoked: 1, im: 'ok' });
    const unban = await call(node, 'PUT', `/v1/manager/users/${uid}/status`, { status: 'active' }, admin.token);
    assert.deepEqual(unban.body, { status: 200, revoked: 0 }, 'an unban tells WuKongIM nothing');
  });

  it('an admin ending every session of a user says whether the IM step is owed', async () => {
    const name = uniqueName('revoked');
    const { uid } = await createAccount(node.runtime, { username: name, password: PASSWORD });
    const browser = await loggedIn(node, name, WEB, 'browser');
    const connection = double.connect(uid, WEB, browser.imToken);
    double.fail({ kind: 'status', status: 500 });
    const down = await call(node, 'DELETE', `/v1/manager/users/${uid}/sessions`, undefined, admin.token);
    assert.deepEqual(down.body, { revoked: 1, im: 'owed' });
    double.recover();
    await until('the owed device_quit reaches WuKongIM', () => connection?.kickedBy === 'device_quit');
    await loggedIn(node, name, WEB, 'browser');
    const up = await call(node, 'DELETE', `/v1/manager/users/${uid}/sessions`, undefined, admin.token);
    assert.deepEqual(up.body, { revoked: 1, im: 'ok' });
  });

  it('the Web sessions left behind by logouts during a long outage get a working IM token once WuKongIM is back', async () => {
    const users = await Promise.all([1, 2, 3].map(async () => {
      const name = uniqueName('stay');
      const { uid } = await createAccount(node.runtime, { username: name, password: PASSWORD });
      const leaving = await loggedIn(node, name, WEB, 'leaving');
      const staying = await loggedIn(node, name, WEB, 'staying');
      assert.equal(staying.imToken, leaving.imToken, 'Web sessions share one IM token');
      return { uid, leaving, staying, connection: double.connect(uid, WEB, leaving.imToken) };
    }));

    double.fail({ kind: 'reset' });
    const quits = await Promise.all(users.map((u) => call(node, 'POST', '/v1/user/quit', undefined, u.leaving.token)));
    assert.deepEqual(quits.map((q) => q.body), users.map(() => ({ status: 200, im: 'failed' })));
    const waiting = await Promise.all(users.map((u) => call(node, 'GET', '/v1/user/im_token', undefined, u.staying.token)));
    assert.deepEqual(waiting.map((w) => w.status), [503, 503, 503], 'the rotation is owed');
    assert.deepEqual(waiting.map((w) => w.headers.get('retry-after')), ['1', '1', '1'], 'asked to come back after the next retry');

    const before = users.map((u) => quitsOf(double, u.uid));
    await until('every quit is retried past max_attempts', () => users.every((u, i) => quitsOf(double, u.uid) >= (before[i] ?? 0) + MAX_ATTEMPTS + 2));

    double.recover();
    for (const user of users) {
      let fresh: Answer | null = null;
      await until('the remaining session gets its IM token again', async () => {
        fresh = await call(node, 'GET', '/v1/user/im_token', undefined, user.staying.token);
        return fresh.status === 200;
      });
      const imToken: unknown = (fresh as Answer | null)?.body.im_token;
      assert.equal(typeof imToken, 'string');
      assert.notEqual(imToken, user.staying.imToken, 'rotated: the logged-out browser\'s copy is dead');
      assert.equal(user.connection?.kickedBy, 'device_quit');
      assert.equal(double.connect(user.uid, WEB, user.leaving.imToken), null);
      assert.notEqual(double.connect(user.uid, WEB, String(imToken)), null, 'the remaining browser connects with the new token');
    }
  });
});
