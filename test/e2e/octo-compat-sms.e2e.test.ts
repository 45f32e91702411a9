/**
 * `compat.octo`: the apps' SMS registration and password reset (docs/octo-compat.md §2), replayed
 * as TangSengDaoDao Android and iOS send them: `sms/registercode {zone, phone}`, `register {zone,
 * phone, code, password, invite_code, device}`, `sms/forgetpwd {zone, phone}`, `pwdforget {zone,
 * phone, code, pwd}`. Codes are read from the node's randomness (TellingRandom), as the console
 * sender's outbox would show them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCodeTestServer, type CodeTestServer } from '../support/codes.ts';

const PASSWORD = 'correct horse battery';
const NEW_PASSWORD = 'another good passphrase';
let counter = 0;
const uniquePhone = () => `139${String(process.pid % 10_000).padStart(4, '0')}${String(++counter).padStart(4, '0')}`;

async function send(server: { url: string }, path: string, body: unknown, token?: string): Promise<{ status: number; body: any }> {
  const response = await fetch(server.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', model: 'Pixel 7', os: 'Android', appid: 'wukongchat', ...(token === undefined ? {} : { token }) },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

const device = { device_id: 'android-sms', device_name: 'Pixel 7', device_model: 'Pixel 7' };

describe('compat.octo: SMS registration and password reset as the apps send them', () => {
  let server: CodeTestServer;
  const lastCode = () => {
    const code = server.random.codes.at(-1);
    assert.ok(code !== undefined, 'no code was drawn');
    return code;
  };

  before(async () => {
    server = await startCodeTestServer({ compat: { octo: true }, code_login: { register_by_sms: true, send_answer_ms: 0 } });
  });
  after(async () => server.stop());

  it('registercode, then register with the code: an account with the number proven and the password set, logged in', async () => {
    const phone = uniquePhone();
    const sent = await send(server, '/v1/user/sms/registercode', { zone: '0086', phone });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    assert.equal(sent.body.exist, 0);
    const code = lastCode();
    const wrong = await send(server, '/v1/user/register', { zone: '0086', phone, code: code === '000000' ? '111111' : '000000', password: PASSWORD, invite_code: '', device });
    assert.deepEqual([wrong.status, wrong.body.msg, wrong.body.code], [400, '验证码错误', 'invalid_credentials']);
    const weak = await send(server, '/v1/user/register', { zone: '0086', phone, code, password: '123456', invite_code: '', device });
    assert.deepEqual([weak.status, weak.body.code], [400, 'invalid_request']);
    assert.match(weak.body.msg, /^密码不符合要求/);
    const registered = await send(server, '/v1/user/register', { zone: '0086', phone, code, password: PASSWORD, invite_code: '', device });
    assert.equal(registered.status, 200, JSON.stringify(registered.body));
    assert.equal(registered.body.zone, '0086');
    assert.equal(registered.body.phone, phone);
    assert.equal(registered.body.setting.new_msg_notice, 1);
    assert.equal(typeof registered.body.token, 'string');
    // The code worked once.
    const again = await send(server, '/v1/user/register', { zone: '0086', phone, code, password: PASSWORD, invite_code: '', device });
    assert.equal(again.status, 400);
    // The number logs in with the password, as octo's `00<zone><phone>`.
    const login = await send(server, '/v1/user/login', { username: `0086${phone}`, password: PASSWORD, device });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    assert.equal(login.body.uid, registered.body.uid);
  });

  it('registercode never says whether the number has an account; registering a taken number is 400 该手机号已被注册 only with a right code', async () => {
    const phone = uniquePhone();
    await send(server, '/v1/user/sms/registercode', { zone: '0086', phone });
    assert.equal((await send(server, '/v1/user/register', { zone: '0086', phone, code: lastCode(), password: PASSWORD, device })).status, 200);
    server.clock.advance(61_000); // past the resend cooldown
    const sent = await send(server, '/v1/user/sms/registercode', { zone: '0086', phone });
    assert.deepEqual([sent.status, sent.body.exist], [200, 0]);
    const taken = await send(server, '/v1/user/register', { zone: '0086', phone, code: lastCode(), password: PASSWORD, device });
    assert.deepEqual([taken.status, taken.body.msg, taken.body.code], [400, '该手机号已被注册', 'conflict']);
  });

  it('forgetpwd, then pwdforget {zone, phone, code, pwd}: the new password works, and every session ended', async () => {
    const phone = uniquePhone();
    await send(server, '/v1/user/sms/registercode', { zone: '0086', phone });
    const { token } = (await send(server, '/v1/user/register', { zone: '0086', phone, code: lastCode(), password: PASSWORD, device })).body;
    server.clock.advance(61_000); // past the resend cooldown
    const sent = await send(server, '/v1/user/sms/forgetpwd', { zone: '0086', phone });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    const reset = await send(server, '/v1/user/pwdforget', { zone: '0086', phone, code: lastCode(), pwd: NEW_PASSWORD });
    assert.deepEqual([reset.status, reset.body.status], [200, 200], JSON.stringify(reset.body));
    const dead = await send(server, '/v1/user/quit', {}, token);
    assert.deepEqual([dead.status, dead.body.msg], [401, '请先登录！']);
    assert.equal((await send(server, '/v1/user/login', { username: `0086${phone}`, password: PASSWORD })).status, 400);
    assert.equal((await send(server, '/v1/user/login', { username: `0086${phone}`, password: NEW_PASSWORD })).status, 200);
    // latchkey's own shape still works on the same route with compat on.
    server.clock.advance(61_000);
    assert.equal((await send(server, '/v1/user/sms/forgetpwd', { zone: '86', phone })).status, 200);
    const latchkeyShape = await send(server, '/v1/user/pwdforget', { channel: 'sms', to: `86-${phone}`, code: lastCode(), new_password: PASSWORD });
    assert.equal(latchkeyShape.status, 200, JSON.stringify(latchkeyShape.body));
  });

  it('forgetpwd for a number without an account answers the same; its code resets nothing', async () => {
    const phone = uniquePhone();
    const sent = await send(server, '/v1/user/sms/forgetpwd', { zone: '0086', phone });
    assert.equal(sent.status, 200);
    const reset = await send(server, '/v1/user/pwdforget', { zone: '0086', phone, code: lastCode(), pwd: NEW_PASSWORD });
    assert.deepEqual([reset.status, reset.body.msg], [400, '验证码错误']);
  });
});
