/**
 * An address nobody proved belongs to nobody. `/v1/user/register` takes any email or phone; until a
 * code sent to it was entered, code login, password reset and SSO linking must never match it, and
 * its real owner proving it drops the claim from the registrant's account.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { call, type Answer } from '../support/server.ts';
import { startCodeTestServer, type CodeTestServer } from '../support/codes.ts';
import { Browser, ssoLogin, startSsoWorld, type SsoWorld } from '../support/idp.ts';

const PASSWORD = 'registrant knows this';

describe('an unverified address belongs to nobody (codes)', () => {
  let server: CodeTestServer;
  before(async () => {
    server = await startCodeTestServer();
  });
  after(async () => {
    await server.stop();
  });

  const register = (username: string, extra: Record<string, unknown>) =>
    call(server, 'POST', '/v1/user/register', { username, password: PASSWORD, flag: 1, ...extra });
  /** Sends a code and returns it, delivered or not (the random remembers every code it drew). */
  const codeFor = async (channel: string, to: string, purpose: string): Promise<string> => {
    server.clock.advance(61_000);
    const drawn = server.random.codes.length;
    const sent = await call(server, 'POST', '/v1/user/code/send', { channel, to, purpose });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    const code = server.random.codes[drawn];
    assert.ok(code !== undefined);
    return code;
  };
  const current = async (token: string) => (await call(server, 'GET', '/v1/user/current', undefined, token)).body;

  it("the victim's code login never lands in the registrant's account: it makes the victim's own and drops the claim", async () => {
    const mallory = await register('mallory', { email: 'victim@example.test' });
    assert.equal(mallory.status, 201);
    assert.equal((await current(mallory.body.token)).email_verified, false);

    const code = await codeFor('email', 'victim@example.test', 'login');
    const answers = await Promise.all(Array.from({ length: 4 }, () =>
      call(server, 'POST', '/v1/user/code/login', { channel: 'email', to: 'victim@example.test', code, flag: 1 })));
    const ok = answers.filter((a: Answer) => a.status === 200);
    assert.equal(ok.length, 1, JSON.stringify(answers.map((a) => a.body)));
    const victim = ok[0];
    assert.ok(victim !== undefined);
    assert.notEqual(victim.body.uid, mallory.body.uid, 'the code login must not sign the victim into the registrant\'s account');

    const victimNow = await current(victim.body.token);
    assert.equal(victimNow.email, 'victim@example.test');
    assert.equal(victimNow.email_verified, true);
    const malloryNow = await current(mallory.body.token);
    assert.equal(malloryNow.email ?? null, null, 'the unverified claim is dropped');
    assert.equal(malloryNow.email_verified, false);
  });

  it("a reset code for a claimed address never resets the registrant's account", async () => {
    const mallory = await register('mallory2', { email: 'victim2@example.test' });
    assert.equal(mallory.status, 201);
    const code = await codeFor('email', 'victim2@example.test', 'reset_password');
    const reset = await call(server, 'POST', '/v1/user/pwdforget', { channel: 'email', to: 'victim2@example.test', code, new_password: 'victim chose this' });
    assert.equal(reset.status, 401, JSON.stringify(reset.body));
    assert.equal((await call(server, 'POST', '/v1/user/login', { username: 'mallory2', password: PASSWORD, flag: 1 })).status, 200);
    assert.equal((await current(mallory.body.token)).uid, mallory.body.uid, 'no session was ended either');
  });

  it('an SMS code login never lands in an account that only claims the number (SMS registration off)', async () => {
    const mallory = await register('mallory3', { zone: '86', phone: '13700000001' });
    assert.equal(mallory.status, 201);
    const code = await codeFor('sms', '86-13700000001', 'login');
    const login = await call(server, 'POST', '/v1/user/code/login', { channel: 'sms', to: '86-13700000001', code, flag: 1 });
    assert.equal(login.status, 401, JSON.stringify(login.body));
    assert.equal((await current(mallory.body.token)).phone, '86-13700000001', 'nobody proved the number, so nothing moved');
  });

  it('a signed-in user proves an address with a verify code; from then on code login and reset find the account', async () => {
    const owner = await register('owner', { email: 'owner@example.test', zone: '86', phone: '13700000002' });
    assert.equal(owner.status, 201);
    const before = await current(owner.body.token);
    assert.equal(before.email_verified, false);
    assert.equal(before.phone_verified, false);

    const emailCode = await codeFor('email', 'owner@example.test', 'verify');
    const wrong = await call(server, 'POST', '/v1/user/verify_address', { channel: 'email', code: emailCode === '000000' ? '000001' : '000000' }, owner.body.token);
    assert.equal(wrong.status, 401);
    const otherAddress = await call(server, 'POST', '/v1/user/verify_address', { channel: 'email', to: 'other@example.test', code: emailCode }, owner.body.token);
    assert.equal(otherAddress.status, 400);
    assert.equal(otherAddress.body.details.field, 'to');
    const anonymous = await call(server, 'POST', '/v1/user/verify_address', { channel: 'email', code: emailCode });
    assert.equal(anonymous.status, 401);
    const verified = await call(server, 'POST', '/v1/user/verify_address', { channel: 'email', to: 'Owner@Example.test', code: emailCode }, owner.body.token);
    assert.equal(verified.status, 200, JSON.stringify(verified.body));
    const smsCode = await codeFor('sms', '86-13700000002', 'verify');
    assert.equal((await call(server, 'POST', '/v1/user/verify_address', { channel: 'sms', code: smsCode }, owner.body.token)).status, 200);

    const after = await current(owner.body.token);
    assert.equal(after.email_verified, true);
    assert.equal(after.phone_verified, true);
    const login = await call(server, 'POST', '/v1/user/code/login', {
      channel: 'sms', to: '86-13700000002', code: await codeFor('sms', '86-13700000002', 'login'), flag: 2,
    });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    assert.equal(login.body.uid, owner.body.uid);
    const reset = await call(server, 'POST', '/v1/user/pwdforget', {
      channel: 'email', to: 'owner@example.test', code: await codeFor('email', 'owner@example.test', 'reset_password'), new_password: 'a fresh password',
    });
    assert.equal(reset.status, 200, JSON.stringify(reset.body));
  });

  it('a proven address cannot be claimed again by a registration', async () => {
    const taken = await register('squatter', { email: 'victim@example.test' });
    assert.equal(taken.status, 409);
    assert.equal(taken.body.details.field, 'email');
  });

  it('a decomposed spelling of a proven email is the same address, not a second claim', async () => {
    const composed = 'jos\u00e9@example.test';
    const owner = await call(server, 'POST', '/v1/user/code/login', { channel: 'email', to: composed, code: await codeFor('email', composed, 'login'), flag: 1 });
    assert.equal(owner.status, 200, JSON.stringify(owner.body));
    const lookalike = await register('squatter2', { email: 'jose\u0301@example.test' });
    assert.equal(lookalike.status, 409, JSON.stringify(lookalike.body));
  });
});

describe('an unverified address belongs to nobody (SSO)', () => {
  let world: SsoWorld;
  before(async () => {
    world = await startSsoWorld();
  });
  after(async () => {
    await world.stop();
  });

  it("link_by_verified_email never links a first SSO login into an account that only claims the email, and the claim is dropped", async () => {
    const mallory = await call(world.server, 'POST', '/v1/user/register', { username: 'mallory', password: PASSWORD, email: 'linus@corp.test' });
    assert.equal(mallory.status, 201);
    const linus = await ssoLogin(new Browser(), world.server, 'linus');
    assert.notEqual(linus.uid, mallory.body.uid, 'the SSO login must not land in the registrant\'s account');
    const linusNow = await call(world.server, 'GET', '/v1/user/current', undefined, linus.token);
    assert.equal(linusNow.body.email, 'linus@corp.test');
    assert.equal(linusNow.body.email_verified, true);
    const malloryNow = await call(world.server, 'GET', '/v1/user/current', undefined, mallory.body.token);
    assert.equal(malloryNow.body.email ?? null, null);
  });
});
