/**
 * compat.octo with an IM server (docs/octo-compat.md §2, 8): the TangSengDaoDao web client connects
 * to WuKongIM with its login `token` and ignores `im_token`, so on Web and PC the session token
 * itself is registered at WuKongIM, one session per flag. Shown against the WuKongIM double: a web
 * login's token connects; its logout quits it at WuKongIM; a second web login ends the first, whose
 * token then neither authenticates nor connects; the store never holds the session token.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { call, type Answer } from '../support/server.ts';
import { startImNode, type ImTestNode } from '../support/im-node.ts';
import { WukongImDouble } from '../support/wukongim-double.ts';

const PASSWORD = 'correct horse battery';
const APP = 0;
const WEB = 1;
const PC = 2;
let counter = 0;
const unique = (label: string) => `${label}${process.pid}x${++counter}`;

/** The web client's login as it sends it (flag 1, `token` header afterwards). */
function webLogin(node: ImTestNode, username: string, flag = WEB, deviceId = 'web-1'): Promise<Answer> {
  return call(node, 'POST', '/v1/user/login', { username, password: PASSWORD, flag, device: { device_id: deviceId, device_name: 'Chrome', device_model: 'Web' } });
}

async function register(node: ImTestNode): Promise<{ username: string; uid: string }> {
  const username = unique('octoim');
  const answer = await call(node, 'POST', '/v1/user/register', { username, password: PASSWORD, name: 'Alice' });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.equal((await call(node, 'POST', '/v1/user/quit', undefined, answer.body.token)).status, 200);
  return { username, uid: answer.body.uid };
}

describe('compat.octo with WuKongIM: the Web and PC session token is the IM token', () => {
  let double: WukongImDouble;
  let node: ImTestNode;

  before(async () => {
    double = await WukongImDouble.start({ managerToken: 'test-manager-token' });
    node = await startImNode(double, { compat: { octo: true } });
  });
  after(async () => {
    await node?.stop();
    await double?.close();
  });
  beforeEach(() => double.recover());

  it('a web login registers its own token at WuKongIM; the store keeps only a tag of it; logout quits it there', async () => {
    const { username, uid } = await register(node);
    const login = await webLogin(node, username);
    assert.equal(login.status, 200, JSON.stringify(login.body));
    const token: string = login.body.token;
    assert.equal(login.body.im_token, token, 'the answer names the session token as the IM token');
    assert.equal(double.tokenOf(uid, WEB), token, 'WuKongIM holds the session token for flag 1');
    assert.deepEqual(double.callsTo('/user/token').at(-1)?.body, { uid, token, device_flag: WEB, device_level: 1 });
    const connection = double.connect(uid, WEB, token);
    assert.ok(connection, 'the web client connects to WuKongIM with its login token');
    for (const key of node.kv.keys()) {
      const value = await node.kv.get(key).catch(() => null);
      assert.ok(value === null || !value.includes(token), `${key} holds the session token`);
    }
    const current = await call(node, 'GET', '/v1/user/im_token', undefined, token);
    assert.deepEqual([current.status, current.body.im_token], [200, token]);

    const quitsBefore = double.callsTo('/user/device_quit').length;
    const quit = await call(node, 'POST', '/v1/user/quit', undefined, token);
    assert.equal(quit.status, 200);
    assert.deepEqual(double.callsTo('/user/device_quit').slice(quitsBefore).map((c) => c.body), [{ uid, device_flag: WEB }]);
    assert.equal(connection.kickedBy, 'device_quit');
    assert.equal(double.connect(uid, WEB, token), null, 'the logged-out token no longer connects');
    assert.equal((await call(node, 'GET', '/v1/user/im_token', undefined, token)).status, 401);
  });

  it('a second web login ends the first: its token is 401 here and refused at WuKongIM; PC is one session too', async () => {
    const { username, uid } = await register(node);
    const first = await webLogin(node, username, WEB, 'web-a');
    const firstConnection = double.connect(uid, WEB, first.body.token);
    assert.ok(firstConnection);
    const pc = await webLogin(node, username, PC, 'pc-a');
    assert.equal(double.tokenOf(uid, PC), pc.body.token);
    const second = await webLogin(node, username, WEB, 'web-b');
    assert.equal(second.status, 200);
    assert.equal((await call(node, 'GET', '/v1/user/im_token', undefined, first.body.token)).status, 401, 'one web session: the first ended');
    assert.equal(firstConnection.kickedBy, 'master_update');
    assert.equal(double.tokenOf(uid, WEB), second.body.token);
    assert.equal(double.connect(uid, WEB, first.body.token), null, 'the first web token no longer connects');
    assert.ok(double.connect(uid, WEB, second.body.token));
    assert.equal(double.tokenOf(uid, PC), pc.body.token, 'the PC session is left alone');
    const secondPc = await webLogin(node, username, PC, 'pc-b');
    assert.equal((await call(node, 'GET', '/v1/user/im_token', undefined, pc.body.token)).status, 401);
    assert.equal(double.tokenOf(uid, PC), secondPc.body.token);
  });

  it('the app keeps a fresh 32-hex IM token of its own', async () => {
    const { username, uid } = await register(node);
    const app = await webLogin(node, username, APP, 'phone-1');
    assert.match(app.body.im_token, /^[0-9a-f]{32}$/);
    assert.notEqual(app.body.im_token, app.body.token);
    assert.equal(double.tokenOf(uid, APP), app.body.im_token);
  });
});
