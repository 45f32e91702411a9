/**
 * `compat.octo` end to end (docs/octo-compat.md): the requests TangSengDaoDao Web, Android and iOS
 * send, replayed byte for byte as they send them, against latchkey with compat on (and off, where
 * nothing may change), and the token mirror into a second, private redis-server standing in for
 * octo-server's Redis.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startTestServer, type TestServer } from '../support/server.ts';
import { skipUnlessRedisServer, startRedisServer, type RedisServerProcess } from '../support/processes.ts';

const PASSWORD = 'correct horse battery';
let counter = 0;
const unique = (label: string) => `${label}${process.pid}x${++counter}`;
/** A phone number no other test holds. */
const uniquePhone = () => `138${String(process.pid % 10_000).padStart(4, '0')}${String(++counter).padStart(4, '0')}`;

interface Answer {
  status: number;
  body: any;
  headers: Headers;
}

/** What the clients send: a JSON body and the headers each one adds (docs/octo-compat.md §1). */
async function send(server: { url: string }, method: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(server.url + path, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? null : JSON.parse(text), headers: response.headers };
}

const androidHeaders = (token?: string): Record<string, string> => ({
  ...(token === undefined ? {} : { token }), model: 'Pixel 7', os: 'Android', appid: 'wukongchat', version: '1.0.0', package: 'com.chat.tsdd',
});
const iosHeaders = (token?: string): Record<string, string> => ({ ...(token === undefined ? {} : { token }), bundle_id: 'com.tsdd.ios' });
const webHeaders = (token?: string): Record<string, string> => (token === undefined ? {} : { token });

/** Android's login: `00<zone><phone>`, no `flag`, the device, and the fields octo's Android adds. */
const androidLogin = (username: string, password = PASSWORD) => ({
  username, password, device: { device_id: 'android-1', device_name: 'Pixel 7', device_model: 'Pixel 7' },
});
/** iOS sends the same without flag, with fields octo-server ignores. */
const iosLogin = (username: string) => ({
  username, password: PASSWORD, device: { device_id: 'ios-1', device_name: 'iPhone', device_model: 'iPhone15,2', os: 'iOS 17' }, login_type: 'password',
});
/** The web client adds `flag: 1`. */
const webLogin = (username: string) => ({
  username, password: PASSWORD, flag: 1, device: { device_id: 'web-1', device_name: 'Chrome', device_model: 'Web' },
});

async function registerWithPhone(server: TestServer, name = 'Alice'): Promise<{ username: string; phone: string; uid: string }> {
  const username = unique('octo');
  const phone = uniquePhone();
  const answer = await send(server, 'POST', '/v1/user/register', { username, password: PASSWORD, name, zone: '0086', phone });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return { username, phone, uid: answer.body.uid };
}

describe('compat.octo off: the octo clients\' requests are answered as latchkey always did', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => server.stop());

  it('Android\'s login without flag, with extra fields, or a 00-zone username is refused as before; a wrong password is 401', async () => {
    const username = unique('plain');
    const registered = await send(server, 'POST', '/v1/user/register', { username, password: PASSWORD, zone: '86', phone: uniquePhone() });
    assert.equal(registered.status, 201);
    const noFlag = await send(server, 'POST', '/v1/user/login', androidLogin(username), androidHeaders());
    assert.equal(noFlag.status, 400);
    assert.equal(noFlag.body.code, 'invalid_request');
    assert.equal(noFlag.body.details.field, 'body.flag');
    const extra = await send(server, 'POST', '/v1/user/login', { ...webLogin(username), extra: 1 }, webHeaders());
    assert.equal(extra.status, 400);
    const wrong = await send(server, 'POST', '/v1/user/login', { ...webLogin(username), password: 'wrong password!' });
    assert.deepEqual([wrong.status, wrong.body.code, wrong.body.msg], [401, 'invalid_credentials', 'wrong username or password']);
    const ok = await send(server, 'POST', '/v1/user/login', webLogin(username));
    assert.equal(ok.status, 200);
    assert.equal(ok.body.setting, undefined);
    assert.equal(ok.body.short_no, undefined);
    assert.equal((await send(server, 'POST', '/v1/user/pc/quit', undefined, webHeaders(ok.body.token))).status, 404);
  });
});

describe('compat.octo on, with the token mirror into octo-server\'s Redis', { skip: skipUnlessRedisServer() }, () => {
  let server: TestServer;
  let octoRedis: RedisServerProcess;
  let octo: Redis;

  before(async () => {
    octoRedis = await startRedisServer();
    octo = new Redis(octoRedis.url, { maxRetriesPerRequest: 1 });
    server = await startTestServer({
      compat: { octo: true, octo_redis: { url: octoRedis.url, retry_interval_ms: 100, retry_max_interval_ms: 200 } },
    });
  });
  after(async () => {
    await server.stop();
    octo.disconnect();
    await octoRedis.stop();
  });

  it('Android logs in with 00<zone><phone>, no flag and extra fields; the answer has octo\'s fields and setting defaults, and never a password hash', async () => {
    const { username, phone, uid } = await registerWithPhone(server);
    const answer = await send(server, 'POST', '/v1/user/login', { ...androidLogin(`0086${phone}`), unknown_field: 'ignored' }, androidHeaders());
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const body = answer.body;
    // latchkey's fields are all kept.
    for (const field of ['uid', 'username', 'name', 'token', 'sid', 'device_flag', 'expires_at', 'role']) assert.ok(field in body, field);
    assert.equal(body.uid, uid);
    assert.equal(body.username, username);
    assert.equal(body.device_flag, 0);
    // octo's.
    assert.equal(body.short_no, username);
    assert.equal(body.zone, '0086');
    assert.equal(body.phone, phone);
    assert.equal(body.sex, 0);
    assert.equal(body.avatar, `users/${uid}/avatar`);
    assert.equal(body.app_id, 'wukongchat');
    assert.deepEqual(body.setting, {
      search_by_phone: 1, search_by_short: 1, new_msg_notice: 1, msg_show_detail: 1, voice_on: 1, shock_on: 1,
      offline_protection: 0, device_lock: 0, mute_of_app: 0,
    });
    assert.equal('chat_pwd' in body, false);
    assert.equal('lock_screen_pwd' in body, false);
  });

  it('iOS (no flag, unknown device fields) and the web client (flag 1) log in too', async () => {
    const { username } = await registerWithPhone(server);
    const ios = await send(server, 'POST', '/v1/user/login', iosLogin(username), iosHeaders());
    assert.equal(ios.status, 200, JSON.stringify(ios.body));
    assert.equal(ios.body.device_flag, 0);
    const web = await send(server, 'POST', '/v1/user/login', webLogin(username), webHeaders());
    assert.equal(web.status, 200, JSON.stringify(web.body));
    assert.equal(web.body.device_flag, 1);
    assert.equal(web.body.app_id, '');
  });

  it('a wrong password is 400 with octo\'s Chinese msg and latchkey\'s code; a dead token is 401', async () => {
    const { username, phone } = await registerWithPhone(server);
    for (const name of [username, `0086${phone}`, unique('nobody')]) {
      const wrong = await send(server, 'POST', '/v1/user/login', androidLogin(name, 'not the password'), androidHeaders());
      assert.deepEqual([wrong.status, wrong.body.status, wrong.body.msg, wrong.body.code], [400, 400, '用户名或密码错误', 'invalid_credentials'], name);
    }
    const taken = await send(server, 'POST', '/v1/user/register', { username, password: PASSWORD });
    assert.deepEqual([taken.status, taken.body.msg, taken.body.code], [400, '该用户名已存在', 'conflict']);
    const token = (await send(server, 'POST', '/v1/user/login', androidLogin(username))).body.token;
    assert.equal((await send(server, 'POST', '/v1/user/quit', undefined, androidHeaders(token))).status, 200);
    const dead = await send(server, 'POST', '/v1/user/quit', undefined, androidHeaders(token));
    assert.deepEqual([dead.status, dead.body.status, dead.body.msg, dead.body.code], [401, 401, '请先登录！', 'unauthorized']);
    const none = await send(server, 'POST', '/v1/user/quit', undefined, {});
    assert.equal(none.status, 401);
  });

  it('a latchkey-only route keeps latchkey\'s answers with compat on', async () => {
    const { username } = await registerWithPhone(server);
    const token = (await send(server, 'POST', '/v1/user/login', webLogin(username))).body.token;
    const bad = await send(server, 'DELETE', '/v1/user/sessions/not-a-sid', undefined, webHeaders(token));
    assert.deepEqual([bad.status, bad.body.code], [400, 'invalid_request']);
    assert.match(bad.body.msg, /^params\.sid /);
    const dead = await send(server, 'GET', '/v1/user/sessions', undefined, webHeaders('x'.repeat(43)));
    assert.deepEqual([dead.status, dead.body.msg], [401, 'a valid session token is required']);
  });

  it('a login writes token:<t> as uid@name@role; a logout removes it before it answers', async () => {
    const { username, uid } = await registerWithPhone(server, 'Alice');
    const { token } = (await send(server, 'POST', '/v1/user/login', androidLogin(username), androidHeaders())).body;
    assert.equal(await octo.get(`token:${token}`), `${uid}@Alice@`);
    const ttl = await octo.ttl(`token:${token}`);
    assert.ok(ttl > 29 * 24 * 3600 && ttl <= 30 * 24 * 3600, String(ttl));
    assert.equal((await send(server, 'POST', '/v1/user/quit', undefined, androidHeaders(token))).status, 200);
    assert.equal(await octo.get(`token:${token}`), null);
  });

  it('every other way a session ends removes its key too: a replacing phone login, revoke-others, a password change', async () => {
    const { username } = await registerWithPhone(server);
    const phone1 = (await send(server, 'POST', '/v1/user/login', androidLogin(username), androidHeaders())).body.token;
    const phone2 = (await send(server, 'POST', '/v1/user/login', iosLogin(username), iosHeaders())).body.token;
    assert.equal(await octo.get(`token:${phone1}`), null, 'the replaced phone\'s key is left');
    assert.notEqual(await octo.get(`token:${phone2}`), null);
    const web = (await send(server, 'POST', '/v1/user/login', webLogin(username))).body.token;
    const revoked = await send(server, 'POST', '/v1/user/sessions/revoke_others', undefined, webHeaders(phone2));
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.equal(await octo.get(`token:${web}`), null, 'revoke-others left a key');
    const pc = (await send(server, 'POST', '/v1/user/login', { ...webLogin(username), flag: 2 })).body.token;
    const changed = await send(server, 'PUT', '/v1/user/updatepassword', { password: PASSWORD, new_password: 'a brand new passphrase' }, webHeaders(phone2));
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    assert.equal(await octo.get(`token:${pc}`), null, 'a password change left a key');
    assert.notEqual(await octo.get(`token:${phone2}`), null);
  });

  it('a password change with a wrong current password is 400 旧密码错误, never a 401 that would sign the client out', async () => {
    const { username } = await registerWithPhone(server);
    const web = (await send(server, 'POST', '/v1/user/login', webLogin(username))).body.token;
    const wrong = await send(server, 'PUT', '/v1/user/updatepassword', { password: 'not my password!', new_password: 'a brand new passphrase' }, webHeaders(web));
    assert.deepEqual([wrong.status, wrong.body.msg, wrong.body.code], [400, '旧密码错误', 'invalid_credentials']);
    const weak = await send(server, 'PUT', '/v1/user/updatepassword', { password: PASSWORD, new_password: 'short' }, webHeaders(web));
    assert.equal(weak.status, 400);
    assert.notEqual((await send(server, 'GET', '/v1/user/current', undefined, webHeaders(web))).status, 401, 'still signed in');
    const ok = await send(server, 'PUT', '/v1/user/updatepassword', { password: PASSWORD, new_password: 'a brand new passphrase', extra: 1 }, webHeaders(web));
    assert.deepEqual([ok.status, ok.body], [200, { status: 200 }]);
  });

  it('a name holding @admin cannot forge octo\'s role', async () => {
    const { username, uid } = await registerWithPhone(server, 'eve@admin');
    const { token } = (await send(server, 'POST', '/v1/user/login', webLogin(username))).body;
    const value = await octo.get(`token:${token}`);
    assert.equal(value, `${uid}@eve_admin@`);
    // octo-server's parser: strings.Split on every `@`, the third part is the role.
    assert.equal(value?.split('@')[2], '');
  });

  it('PC quit from the phone ends the Web and PC sessions and their mirror keys, not the phone\'s', async () => {
    const { username } = await registerWithPhone(server);
    const app = (await send(server, 'POST', '/v1/user/login', androidLogin(username), androidHeaders())).body.token;
    const web = (await send(server, 'POST', '/v1/user/login', webLogin(username))).body.token;
    const pc = (await send(server, 'POST', '/v1/user/login', { ...webLogin(username), flag: 2 })).body.token;
    const quit = await send(server, 'POST', '/v1/user/pc/quit', undefined, androidHeaders(app));
    assert.deepEqual([quit.status, quit.body.status, quit.body.revoked], [200, 200, 2]);
    assert.equal((await send(server, 'GET', '/v1/user/sessions', undefined, webHeaders(web))).status, 401);
    assert.equal((await send(server, 'GET', '/v1/user/sessions', undefined, webHeaders(pc))).status, 401);
    assert.equal(await octo.get(`token:${web}`), null);
    assert.equal(await octo.get(`token:${pc}`), null);
    assert.notEqual(await octo.get(`token:${app}`), null);
  });

  it('GET /v1/user/devices/:device_id gives an integer id, the same every time; an unknown device is 400 未查询到该设备', async () => {
    const { username } = await registerWithPhone(server);
    const token = (await send(server, 'POST', '/v1/user/login', androidLogin(username), androidHeaders())).body.token;
    const first = await send(server, 'GET', '/v1/user/devices/android-1', undefined, androidHeaders(token));
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.ok(Number.isInteger(first.body.id) && first.body.id > 0 && first.body.id <= 0x7fffffff);
    assert.equal(first.body.device_id, 'android-1');
    assert.equal(first.body.self, 1);
    assert.match(first.body.last_login, /^\d{4}-\d\d-\d\d \d\d:\d\d$/);
    const again = await send(server, 'GET', '/v1/user/devices/android-1', undefined, androidHeaders(token));
    assert.equal(again.body.id, first.body.id);
    const unknown = await send(server, 'GET', '/v1/user/devices/nothing', undefined, androidHeaders(token));
    assert.deepEqual([unknown.status, unknown.body.msg, unknown.body.code], [400, '未查询到该设备', 'not_found']);
  });

  it('with octo-server\'s Redis hung, a logout answers 503, and the key goes once it answers again', async () => {
    const { username } = await registerWithPhone(server);
    const { token } = (await send(server, 'POST', '/v1/user/login', webLogin(username))).body;
    assert.notEqual(await octo.get(`token:${token}`), null);
    octoRedis.pause();
    let quit: Answer;
    try {
      quit = await send(server, 'POST', '/v1/user/quit', undefined, webHeaders(token));
      // A login cannot be mirrored either: 503, and no session is left behind.
      const login = await send(server, 'POST', '/v1/user/login', webLogin(username));
      assert.equal(login.status, 503, JSON.stringify(login.body));
    } finally {
      octoRedis.resume();
    }
    assert.deepEqual([quit.status, quit.body.code], [503, 'upstream_unavailable']);
    assert.ok(Number(quit.headers.get('retry-after')) >= 1);
    // The session is over in latchkey at once; the queue removes octo's key once its Redis answers.
    assert.equal((await send(server, 'GET', '/v1/user/sessions', undefined, webHeaders(token))).status, 401);
    const deadline = Date.now() + 10_000;
    while ((await octo.get(`token:${token}`)) !== null) {
      assert.ok(Date.now() < deadline, 'the owed removal never landed');
      await sleep(50);
    }
    const sessions = (await send(server, 'POST', '/v1/user/login', webLogin(username))).body;
    const listed = await send(server, 'GET', '/v1/user/sessions', undefined, webHeaders(sessions.token));
    assert.equal(listed.body.filter((s: { method: string }) => s.method === 'password').length, 1, `the refused login left its session behind: ${JSON.stringify(listed.body)}`);
  });
});
