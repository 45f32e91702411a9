/**
 * The IM bridge end to end (docs/design.md §3.4): latchkey over HTTP, the WuKongIM test double as the IM
 * server, clients' IM connections simulated on the double. What a client can do with its IM token
 * after each login, logout and ban, and what is left in every store when the IM server is down.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { setAccountStatus } from '../../src/core/accounts.ts';
import { imTokenKey } from '../../src/core/sessions/keys.ts';
import { parseImTokenValue } from '../../src/core/sessions/im-token-value.ts';
import { call, startTestServer, type Answer } from '../support/server.ts';
import { keysOf, startImNode, type ImTestNode } from '../support/im-node.ts';
import { WukongImDouble } from '../support/wukongim-double.ts';

const PASSWORD = 'correct horse battery';
const APP = 0;
const WEB = 1;

let counter = 0;
const uniqueName = (label: string) => `${label}${process.pid}x${++counter}`;

async function register(node: ImTestNode, username: string): Promise<string> {
  const answer = await call(node, 'POST', '/v1/user/register', { username, password: PASSWORD, flag: WEB });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  assert.equal((await call(node, 'POST', '/v1/user/quit', undefined, answer.body.token)).status, 200);
  return answer.body.uid;
}

function login(node: ImTestNode, username: string, flag: number, deviceId = `device-${flag}`): Promise<Answer> {
  return call(node, 'POST', '/v1/user/login', { username, password: PASSWORD, flag, device: { device_id: deviceId, device_name: deviceId, device_model: 'test' } });
}

async function loggedIn(node: ImTestNode, username: string, flag: number, deviceId?: string): Promise<{ token: string; imToken: string; sid: string }> {
  const answer = await login(node, username, flag, deviceId);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.match(answer.body.im_token, /^[0-9a-f]{32}$/);
  return { token: answer.body.token, imToken: answer.body.im_token, sid: answer.body.sid };
}

async function metric(node: ImTestNode, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${node.metricsUrl}`)).text();
  const match = pattern.exec(text);
  return match?.[1] === undefined ? 0 : Number(match[1]);
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(25);
  }
}

describe('the IM bridge with WuKongIM', () => {
  let double: WukongImDouble;
  let node: ImTestNode;

  before(async () => {
    double = await WukongImDouble.start({ managerToken: 'test-manager-token' });
    node = await startImNode(double);
  });
  after(async () => {
    await node?.stop();
    await double?.close();
  });
  beforeEach(() => double.recover());

  it('a second APP login pushes its token as Master: the first app\'s IM connection is kicked', async () => {
    const name = uniqueName('app');
    const uid = await register(node, name);
    const first = await loggedIn(node, name, APP, 'phone-1');
    const firstConnection = double.connect(uid, APP, first.imToken);
    assert.ok(firstConnection, 'the first app connects with its IM token');

    const second = await loggedIn(node, name, APP, 'phone-2');
    assert.notEqual(second.imToken, first.imToken, 'APP is exclusive: no shared token');
    assert.equal(firstConnection.kickedBy, 'master_update');
    assert.deepEqual(double.callsTo('/user/token').at(-1)?.body, { uid, token: second.imToken, device_flag: APP, device_level: 1 });
    assert.equal(double.connect(uid, APP, first.imToken), null, 'the first app cannot reconnect');
    assert.ok(double.connect(uid, APP, second.imToken));
    assert.equal((await call(node, 'GET', '/v1/user/current', undefined, first.token)).status, 401);
  });

  it('two Web sessions share one IM token; logging one out rotates it, and the other fetches the new one', async () => {
    const name = uniqueName('web');
    const uid = await register(node, name);
    const browserA = await loggedIn(node, name, WEB, 'browser-a');
    const browserB = await loggedIn(node, name, WEB, 'browser-b');
    assert.equal(browserB.imToken, browserA.imToken, 'one IM token per (uid, flag), shared');
    assert.equal(double.callsTo('/user/token').at(-1)?.body.device_level, 0, 'Web updates are Slave: they kick nobody');
    const connectionA = double.connect(uid, WEB, browserA.imToken);
    const connectionB = double.connect(uid, WEB, browserB.imToken);
    assert.equal(connectionA?.kickedBy, null);

    const quit = await call(node, 'POST', '/v1/user/quit', undefined, browserA.token);
    assert.deepEqual(quit.body, { status: 200, im: 'ok' });
    assert.equal(connectionA?.kickedBy, 'device_quit', 'the logged-out browser is off the IM server');
    assert.equal(double.connect(uid, WEB, browserA.imToken), null, 'and cannot come back with its old token');

    const fetched = await call(node, 'GET', '/v1/user/im_token', undefined, browserB.token);
    assert.equal(fetched.status, 200);
    assert.notEqual(fetched.body.im_token, browserA.imToken, 'rotated');
    assert.equal(connectionB?.kickedBy, 'device_quit', 'the remaining browser reconnects with the new token');
    assert.ok(double.connect(uid, WEB, fetched.body.im_token), 'the new token connects');
    assert.equal((await call(node, 'GET', `/v1/user/im_token?flag=${WEB}`, undefined, browserB.token)).body.im_token, fetched.body.im_token);
  });

  it('logging out the last session of a flag deletes its IM token and quits the device', async () => {
    const name = uniqueName('last');
    const uid = await register(node, name);
    const browser = await loggedIn(node, name, WEB);
    const connection = double.connect(uid, WEB, browser.imToken);
    const quitsBefore = double.callsTo('/user/device_quit').length;

    assert.deepEqual((await call(node, 'POST', '/v1/user/quit', undefined, browser.token)).body, { status: 200, im: 'ok' });
    assert.equal(parseImTokenValue(await node.kv.get(imTokenKey(uid, WEB))).state, 'none', 'no IM token is kept');
    assert.equal(await node.kv.get(imTokenKey(uid, WEB)), null, 'the key itself is deleted');
    assert.deepEqual(double.callsTo('/user/device_quit').slice(quitsBefore).map((c) => c.body), [{ uid, device_flag: WEB }]);
    assert.equal(connection?.kickedBy, 'device_quit');
    assert.equal(double.tokenOf(uid, WEB), '', 'WuKongIM holds no token for the flag any more');
  });

  it('revoking a session rotates its flag\'s token while another session of the flag remains, and quits the flag when none does', async () => {
    const name = uniqueName('revoker');
    const uid = await register(node, name);
    const browserA = await loggedIn(node, name, WEB, 'browser-a');
    const browserB = await loggedIn(node, name, WEB, 'browser-b');
    const desktop = await loggedIn(node, name, 2, 'desktop');
    const [connectionB, connectionPc] = [double.connect(uid, WEB, browserB.imToken), double.connect(uid, 2, desktop.imToken)];

    assert.equal((await call(node, 'DELETE', `/v1/user/sessions/${browserB.sid}`, undefined, browserA.token)).status, 200);
    assert.equal(connectionB?.kickedBy, 'device_quit');
    const rotated = (await call(node, 'GET', '/v1/user/im_token', undefined, browserA.token)).body.im_token;
    assert.notEqual(rotated, browserB.imToken, 'browser A shares a new token; B\'s copy is dead');
    assert.equal(double.connect(uid, WEB, browserB.imToken), null);

    assert.equal((await call(node, 'DELETE', `/v1/user/sessions/${desktop.sid}`, undefined, browserA.token)).status, 200);
    assert.equal(connectionPc?.kickedBy, 'device_quit');
    assert.deepEqual(double.callsTo('/user/device_quit').at(-1)?.body, { uid, device_flag: 2 });
    assert.equal(await node.kv.get(imTokenKey(uid, 2)), null, 'the last PC session took the PC token with it');
    assert.ok(double.connect(uid, WEB, rotated), 'the Web token is untouched');
  });

  it('a ban quits every IM device of the user at once (device_quit -1)', async () => {
    const name = uniqueName('banned');
    const uid = await register(node, name);
    const phone = await loggedIn(node, name, APP);
    const browser = await loggedIn(node, name, WEB);
    const connections = [double.connect(uid, APP, phone.imToken), double.connect(uid, WEB, browser.imToken)];

    await setAccountStatus(node.runtime, uid, 'banned');
    assert.deepEqual(double.callsTo('/user/device_quit').at(-1)?.body, { uid, device_flag: -1 });
    assert.deepEqual(connections.map((c) => c?.kickedBy), ['device_quit', 'device_quit']);
    assert.equal(double.connect(uid, WEB, browser.imToken), null);
    for (const token of [phone.token, browser.token]) assert.equal((await call(node, 'GET', '/v1/user/current', undefined, token)).status, 401);
    for (const flag of [0, 1, 2] as const) {
      assert.equal(parseImTokenValue(await node.kv.get(imTokenKey(uid, flag))).state, 'none', `no IM token left for flag ${flag}`);
    }
  });

  it('IM server down at login: 503 upstream_unavailable, and no session, index entry, IM token or device is left', async () => {
    const name = uniqueName('down');
    const uid = await register(node, name);
    const before = keysOf(node.kv, uid);
    const sessionsBefore = node.kv.keys().filter((key) => key.startsWith('sess:'));
    for (const failure of [{ kind: 'status', status: 503 }, { kind: 'reset' }, { kind: 'hang' }] as const) {
      double.fail(failure);
      const answer = await login(node, name, WEB, `device-${failure.kind}`);
      assert.equal(answer.status, 503, `${failure.kind}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.code, 'upstream_unavailable');
      assert.equal(answer.body.token, undefined);
      double.recover();
    }
    assert.deepEqual(keysOf(node.kv, uid), before, 'nothing new under the user in the Kv store');
    assert.deepEqual(node.kv.keys().filter((key) => key.startsWith('sess:')), sessionsBefore, 'no session record');
    assert.deepEqual(await node.runtime.accounts.listDevices(uid), [], 'no device remembered');
    assert.equal(double.tokenOf(uid, WEB) ?? '', '', 'the IM server was not given a token that stuck');
    assert.equal(await node.runtime.sessions.im.owedQuitCount(), 0, 'nothing queued');
    const [failed] = await node.runtime.accounts.queryAudit({ uid, type: 'login', limit: 1 });
    assert.deepEqual([failed?.result, failed?.reason], ['fail', 'password:upstream_unavailable']);
    // And with the IM server back, the same login works.
    assert.ok((await loggedIn(node, name, WEB)).imToken);
  });

  it('banned at the IM server (status 19): the login is account_disabled and leaves no session', async () => {
    const name = uniqueName('imban');
    const uid = await register(node, name);
    double.ban(uid);
    const answer = await login(node, name, APP);
    assert.equal(answer.status, 403);
    assert.equal(answer.body.code, 'account_disabled');
    assert.deepEqual(keysOf(node.kv, uid), []);
  });

  it('IM server down at logout: the session still ends, the answer says im "failed", and the device_quit is retried until it lands', async () => {
    const name = uniqueName('retry');
    const uid = await register(node, name);
    const browser = await loggedIn(node, name, WEB);
    const connection = double.connect(uid, WEB, browser.imToken);
    const imFailures = await metric(node, /latchkey_logout_total\{result="im_fail"\} (\d+)/);

    double.fail({ kind: 'status', status: 502 });
    const quit = await call(node, 'POST', '/v1/user/quit', undefined, browser.token);
    assert.deepEqual(quit.body, { status: 200, im: 'failed' });
    assert.equal((await call(node, 'GET', '/v1/user/current', undefined, browser.token)).status, 401, 'the API session is over regardless');
    assert.equal(await metric(node, /latchkey_logout_total\{result="im_fail"\} (\d+)/), imFailures + 1);
    assert.equal(parseImTokenValue(await node.kv.get(imTokenKey(uid, WEB))).state, 'owed');
    assert.equal(connection?.kickedBy, null, 'not yet: the IM server is down');
    // The worker tries while the IM server is down, and fails.
    await until('a retry has failed', async () => (await metric(node, /latchkey_im_quit_retry_total\{result="failed"\} (\d+)/)) >= 1);
    assert.equal(connection?.kickedBy, null);

    double.recover();
    await until('the retried device_quit lands', () => connection?.kickedBy === 'device_quit');
    assert.equal(double.connect(uid, WEB, browser.imToken), null);
    await until('the queue is empty', async () => (await node.runtime.sessions.im.owedQuitCount()) === 0);
    assert.equal(await node.kv.get(imTokenKey(uid, WEB)), null);
    assert.ok((await metric(node, /latchkey_im_quit_retry_total\{result="delivered"\} (\d+)/)) >= 1);
  });

  it('an owed quit is settled by the next login of the flag: it kicks the old token and never hands it out', async () => {
    const name = uniqueName('owed');
    const uid = await register(node, name);
    const old = await loggedIn(node, name, WEB);
    const connection = double.connect(uid, WEB, old.imToken);
    double.fail({ kind: 'reset' });
    assert.equal((await call(node, 'POST', '/v1/user/quit', undefined, old.token)).body.im, 'failed');
    double.recover();
    const fresh = await loggedIn(node, name, WEB);
    assert.notEqual(fresh.imToken, old.imToken);
    assert.equal(connection?.kickedBy, 'device_quit');
    await until('the queue is empty', async () => (await node.runtime.sessions.im.owedQuitCount()) === 0);
    assert.equal((await call(node, 'GET', '/v1/user/im_token', undefined, fresh.token)).body.im_token, fresh.imToken, 'the worker left the new token alone');
  });

  it('GET /v1/user/im_token only gives a session its own flag\'s token', async () => {
    const name = uniqueName('flag');
    await register(node, name);
    const browser = await loggedIn(node, name, WEB);
    const other = await call(node, 'GET', `/v1/user/im_token?flag=${APP}`, undefined, browser.token);
    assert.equal(other.status, 403);
    assert.equal(other.body.code, 'forbidden');
    assert.equal((await call(node, 'GET', '/v1/user/im_token?flag=7', undefined, browser.token)).status, 400);
    assert.equal((await call(node, 'GET', '/v1/user/im_token')).status, 401);
  });
});

describe('without an IM server (im.type none)', () => {
  it('logins carry no im_token, /v1/user/im_token is 404, and logout answers no `im`', async () => {
    const server = await startTestServer();
    try {
      const registered = await call(server, 'POST', '/v1/user/register', { username: uniqueName('plain'), password: PASSWORD, flag: WEB });
      assert.equal(registered.status, 201);
      assert.equal(registered.body.im_token, undefined);
      assert.equal((await call(server, 'GET', '/v1/user/im_token', undefined, registered.body.token)).status, 404);
      assert.deepEqual((await call(server, 'POST', '/v1/user/quit', undefined, registered.body.token)).body, { status: 200 });
    } finally {
      await server.stop();
    }
  });
});
