/**
 * Second factors over HTTP (docs/api.md, second factors): TOTP enrolment behind step-up, the second
 * step of a password login, recovery codes, and the attacks on each: a replayed code, parallel
 * verifications of one ticket, a guessed ticket, a stolen token trying to turn factors on or off.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { TOTP_PERIOD_SECONDS, totpCodeAt } from '../../src/flows/mfa/totp.ts';
import { call, startTestServer, type TestServer } from '../support/server.ts';
import { startCodeTestServer, type CodeTestServer } from '../support/codes.ts';
import { exchange, grant, loginRequest, poll, scan } from '../support/qr-clients.ts';

const PASSWORD = 'correct horse battery';
const STEP_MS = TOTP_PERIOD_SECONDS * 1000;
/** The code of the next time step: accepted now (±1 step of skew), and above the step just used. */
const nextCode = (secret: string, steps = 1) => totpCodeAt(secret, Date.now() + steps * STEP_MS);

describe('second factors over HTTP', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ mfa: { secret_key: { id: 'k1', key: randomBytes(32).toString('base64') } } });
  });
  after(async () => server?.stop());

  async function register(username: string): Promise<string> {
    const answer = await call(server, 'POST', '/v1/user/register', { username, password: PASSWORD });
    assert.equal(answer.status, 201);
    return answer.body.token;
  }

  async function enrol(username: string): Promise<{ token: string; secret: string; codes: string[] }> {
    const token = await register(username);
    const setup = await call(server, 'POST', '/v1/user/mfa/totp/setup', undefined, token);
    assert.equal(setup.status, 200, JSON.stringify(setup.body));
    const enabled = await call(server, 'POST', '/v1/user/mfa/totp/enable', { code: totpCodeAt(setup.body.secret, Date.now()) }, token);
    assert.equal(enabled.status, 200, JSON.stringify(enabled.body));
    return { token, secret: setup.body.secret, codes: enabled.body.recovery_codes };
  }

  it('enrols TOTP: setup shows the secret, its otpauth URL and QR; enable answers 10 recovery codes once', async () => {
    const token = await register('totp-enrol');
    assert.deepEqual((await call(server, 'GET', '/v1/user/mfa', undefined, token)).body, { totp: false, recovery_codes_left: 0, passkeys: 0, totp_available: true });
    const setup = await call(server, 'POST', '/v1/user/mfa/totp/setup', undefined, token);
    assert.match(setup.body.otpauth_url, /^otpauth:\/\/totp\/latchkey:totp-enrol\?/);
    assert.match(setup.body.qrcode_svg, /^<svg/);
    assert.equal(setup.headers.get('cache-control'), 'no-store');
    const wrong = totpCodeAt(setup.body.secret, Date.now() + 10 * STEP_MS);
    assert.equal((await call(server, 'POST', '/v1/user/mfa/totp/enable', { code: wrong }, token)).body.code, 'invalid_credentials');
    const enabled = await call(server, 'POST', '/v1/user/mfa/totp/enable', { code: totpCodeAt(setup.body.secret, Date.now()) }, token);
    assert.equal(enabled.body.recovery_codes.length, 10);
    assert.deepEqual((await call(server, 'GET', '/v1/user/mfa', undefined, token)).body, { totp: true, recovery_codes_left: 10, passkeys: 0, totp_available: true });
    assert.equal((await call(server, 'POST', '/v1/user/mfa/totp/setup', undefined, token)).status, 409, 'no second setup over an enabled factor');
  });

  it('a password login answers a ticket, no token; the code turns it into the session', async () => {
    const { secret } = await enrol('totp-login');
    const first = await call(server, 'POST', '/v1/user/login', { username: 'totp-login', password: PASSWORD, flag: 1, device: { device_id: 'w1', device_name: 'Firefox', device_model: 'Linux' } });
    assert.equal(first.status, 200);
    assert.equal(first.body.token, undefined);
    assert.equal(first.body.mfa_required, true);
    assert.deepEqual(first.body.methods, ['totp', 'recovery']);
    const done = await call(server, 'POST', '/v1/user/mfa/verify', { mfa_ticket: first.body.mfa_ticket, method: 'totp', code: nextCode(secret) });
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.equal(done.body.device_flag, 1);
    const current = await call(server, 'GET', '/v1/user/current', undefined, done.body.token);
    assert.equal(current.body.session.device_name, 'Firefox');
    assert.equal(current.body.session.method, 'password');
    assert.deepEqual(current.body.session.amr, ['pwd', 'otp'], 'the session says a second factor was shown');
    const again = await call(server, 'POST', '/v1/user/mfa/verify', { mfa_ticket: first.body.mfa_ticket, method: 'totp', code: nextCode(secret) });
    assert.deepEqual([again.status, again.body.code], [410, 'expired'], 'a ticket works once');
  });

  it('refuses a TOTP code replayed in the same step, and gives one session to parallel verifications of one ticket', async () => {
    const { secret, codes } = await enrol('totp-replay');
    const login = () => call(server, 'POST', '/v1/user/login', { username: 'totp-replay', password: PASSWORD, flag: 1 });
    const code = nextCode(secret);
    const ticketA = (await login()).body.mfa_ticket;
    assert.equal((await call(server, 'POST', '/v1/user/mfa/verify', { mfa_ticket: ticketA, method: 'totp', code })).status, 200);
    const ticketB = (await login()).body.mfa_ticket;
    const replay = await call(server, 'POST', '/v1/user/mfa/verify', { mfa_ticket: ticketB, method: 'totp', code });
    assert.deepEqual([replay.status, replay.body.code], [401, 'invalid_credentials'], 'the same code in the same step is refused');

    const ticketC = (await login()).body.mfa_ticket;
    const racing = await Promise.all(codes.slice(0, 4).map((recovery) => call(server, 'POST', '/v1/user/mfa/verify', { mfa_ticket: ticketC, method: 'recovery', code: recovery })));
    assert.equal(racing.filter((a) => a.status === 200).length, 1, `one session from one ticket: ${racing.map((a) => a.status)}`);
    const sessions = await call(server, 'GET', '/v1/user/sessions', undefined, racing.find((a) => a.status === 200)!.body.token);
    assert.equal(sessions.body.length, 3, 'register, ticket A, ticket C');
  });

  it('uses a recovery code once', async () => {
    const { codes } = await enrol('totp-recovery');
    const login = () => call(server, 'POST', '/v1/user/login', { username: 'totp-recovery', password: PASSWORD, flag: 1 });
    assert.equal((await call(server, 'POST', '/v1/user/mfa/verify', { mfa_ticket: (await login()).body.mfa_ticket, method: 'recovery', code: codes[0] })).status, 200);
    const reuse = await call(server, 'POST', '/v1/user/mfa/verify', { mfa_ticket: (await login()).body.mfa_ticket, method: 'recovery', code: codes[0] });
    assert.equal(reuse.status, 401);
  });

  it('a ticket dies with a password change made after its first step', async () => {
    const { token, secret } = await enrol('totp-pwchange');
    const ticket = (await call(server, 'POST', '/v1/user/login', { username: 'totp-pwchange', password: PASSWORD, flag: 1 })).body.mfa_ticket;
    assert.equal((await call(server, 'PUT', '/v1/user/updatepassword', { password: PASSWORD, new_password: 'a brand new passphrase' }, token)).status, 200);
    const late = await call(server, 'POST', '/v1/user/mfa/verify', { mfa_ticket: ticket, method: 'totp', code: nextCode(secret) });
    assert.deepEqual([late.status, late.body.code], [410, 'expired'], 'the old password\'s sign-in does not finish');
    const sessions = await call(server, 'GET', '/v1/user/sessions', undefined, token);
    assert.equal(sessions.body.length, 1, 'no session was left behind');
  });

  it('kills a ticket after 5 wrong codes, even fired in parallel, and the right code then gets nothing', async () => {
    const { secret } = await enrol('totp-guess');
    const ticket = (await call(server, 'POST', '/v1/user/login', { username: 'totp-guess', password: PASSWORD, flag: 1 })).body.mfa_ticket;
    const right = nextCode(secret);
    const wrong = Array.from({ length: 12 }, (_, i) => String((Number(right) + 1 + i) % 1_000_000).padStart(6, '0'));
    const guesses = await Promise.all(wrong.map((code) => call(server, 'POST', '/v1/user/mfa/verify', { mfa_ticket: ticket, method: 'totp', code })));
    assert.equal(guesses.filter((a) => a.status === 401).length, 5, `only 5 codes were checked: ${guesses.map((a) => a.status)}`);
    const late = await call(server, 'POST', '/v1/user/mfa/verify', { mfa_ticket: ticket, method: 'totp', code: right });
    assert.deepEqual([late.status, late.body.code], [410, 'expired']);
    const unknown = await call(server, 'POST', '/v1/user/mfa/verify', { mfa_ticket: 'A'.repeat(43), method: 'totp', code: right });
    assert.equal(unknown.status, 410, 'a made-up ticket is no ticket');
    const metrics = await (await fetch(server.metricsUrl!)).text();
    assert.match(metrics, /latchkey_mfa_total\{event="verify",method="totp",result="fail"\} ([5-9]|\d\d)/);
    assert.match(metrics, /latchkey_mfa_total\{event="enrol",method="totp",result="ok"\} \d/);
  });

  it('steps up with the password or TOTP, then regenerates recovery codes and turns TOTP off', async () => {
    const { token: owner, secret, codes } = await enrol('totp-stepup');
    // Proven at its password login (within step_up_seconds); expiry is shown with a hand clock below.
    const stepUpWrong = await call(server, 'POST', '/v1/user/step_up', { method: 'password', password: 'wrong password!' }, owner);
    assert.deepEqual([stepUpWrong.status, stepUpWrong.body.code], [401, 'invalid_credentials']);
    const stepUp = await call(server, 'POST', '/v1/user/step_up', { method: 'totp', code: nextCode(secret) }, owner);
    assert.equal(stepUp.status, 200, JSON.stringify(stepUp.body));
    assert.ok(stepUp.body.step_up_until > Date.now() + 290_000);
    const fresh = await call(server, 'POST', '/v1/user/mfa/recovery_codes', undefined, owner);
    assert.equal(fresh.body.recovery_codes.length, 10);
    const stale = await call(server, 'POST', '/v1/user/mfa/verify', {
      mfa_ticket: (await call(server, 'POST', '/v1/user/login', { username: 'totp-stepup', password: PASSWORD, flag: 1 })).body.mfa_ticket,
      method: 'recovery', code: codes[0],
    });
    assert.equal(stale.status, 401, 'the old recovery codes died');
    assert.equal((await call(server, 'DELETE', '/v1/user/mfa/totp', undefined, owner)).status, 200);
    const plain = await call(server, 'POST', '/v1/user/login', { username: 'totp-stepup', password: PASSWORD, flag: 1 });
    assert.equal(typeof plain.body.token, 'string', 'without a factor the password logs in directly');
  });

  it('another user\'s token cannot see or touch this account\'s factors, and an outsider cannot call the routes', async () => {
    await enrol('totp-victim');
    const other = await register('totp-other');
    assert.deepEqual((await call(server, 'GET', '/v1/user/mfa', undefined, other)).body.totp, false);
    assert.equal((await call(server, 'DELETE', '/v1/user/mfa/totp', undefined, other)).status, 404);
    for (const [method, path] of [['GET', '/v1/user/mfa'], ['POST', '/v1/user/mfa/totp/setup'], ['DELETE', '/v1/user/mfa/totp'], ['POST', '/v1/user/mfa/recovery_codes']] as const) {
      assert.equal((await call(server, method, path)).status, 401, path);
    }
  });
});

describe('step-up expires (hand clock)', () => {
  let server: CodeTestServer;
  before(async () => {
    server = await startCodeTestServer({ mfa: { secret_key: { id: 'k1', key: randomBytes(32).toString('base64') }, step_up_seconds: 300 } });
  });
  after(async () => server?.stop());

  it('a session past step_up_seconds since its password cannot enrol or remove a factor until it steps up again', async () => {
    const token = (await call(server, 'POST', '/v1/user/register', { username: 'stepup-clock', password: PASSWORD })).body.token;
    server.clock.advance(301_000);
    const refused = await call(server, 'POST', '/v1/user/mfa/totp/setup', undefined, token);
    assert.deepEqual([refused.status, refused.body.code, refused.body.details], [403, 'step_up_required', { methods: ['password'] }]);
    const stepped = await call(server, 'POST', '/v1/user/step_up', { method: 'password', password: PASSWORD }, token);
    assert.equal(stepped.body.step_up_until, server.clock.now() + 300_000);
    const setup = await call(server, 'POST', '/v1/user/mfa/totp/setup', undefined, token);
    assert.equal(setup.status, 200);
    assert.equal((await call(server, 'POST', '/v1/user/mfa/totp/enable', { code: totpCodeAt(setup.body.secret, server.clock.now()) }, token)).status, 200);

    server.clock.advance(299_000);
    assert.equal((await call(server, 'POST', '/v1/user/mfa/recovery_codes', undefined, token)).status, 200, 'still within the window');
    server.clock.advance(2_000);
    const late = await call(server, 'DELETE', '/v1/user/mfa/totp', undefined, token);
    assert.deepEqual([late.status, late.body.code, late.body.details], [403, 'step_up_required', { methods: ['password', 'totp'] }]);
    const replayed = await call(server, 'POST', '/v1/user/step_up', { method: 'totp', code: totpCodeAt(setup.body.secret, server.clock.now() - 301_000 - 299_000) }, token);
    assert.equal(replayed.status, 401, 'an old code does not step up');
    assert.equal((await call(server, 'POST', '/v1/user/step_up', { method: 'totp', code: totpCodeAt(setup.body.secret, server.clock.now()) }, token)).status, 200);
    assert.equal((await call(server, 'DELETE', '/v1/user/mfa/totp', undefined, token)).status, 200);
  });

  it('revoking every other session and admin actions need step-up; an account with nothing to show is not locked out', async () => {
    const { createAccount } = await import('../../src/flows/password/password-flow.ts');
    const user = await call(server, 'POST', '/v1/user/register', { username: 'stepup-revoke', password: PASSWORD });
    await createAccount(server.runtime, { username: 'stepup-boss', password: PASSWORD }, 'admin');
    const admin = (await call(server, 'POST', '/v1/user/login', { username: 'stepup-boss', password: PASSWORD, flag: 1 })).body.token;
    server.clock.advance(301_000);
    const revoke = await call(server, 'POST', '/v1/user/sessions/revoke_others', {}, user.body.token);
    assert.deepEqual([revoke.status, revoke.body.code], [403, 'step_up_required']);
    for (const [method, path, body] of [
      ['PUT', `/v1/manager/users/${user.body.uid}/status`, { status: 'banned' }],
      ['DELETE', `/v1/manager/users/${user.body.uid}/sessions`, undefined],
      ['DELETE', `/v1/manager/users/${user.body.uid}/mfa`, undefined],
    ] as const) {
      const refused = await call(server, method, path, body, admin);
      assert.deepEqual([refused.status, refused.body.code], [403, 'step_up_required'], path);
    }
    assert.equal((await call(server, 'GET', `/v1/manager/users/${user.body.uid}/sessions`, undefined, admin)).status, 200, 'reading needs no step-up');
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, user.body.token)).status, 200, 'nothing was done');
    assert.equal((await call(server, 'POST', '/v1/user/step_up', { method: 'password', password: PASSWORD }, admin)).status, 200);
    assert.equal((await call(server, 'PUT', `/v1/manager/users/${user.body.uid}/status`, { status: 'banned' }, admin)).status, 200);

    // Signed up by a one-time code: no password, no TOTP, nothing to step up with.
    await call(server, 'POST', '/v1/user/code/send', { channel: 'email', to: 'nofactor@example.test', purpose: 'login' });
    const { lastCode } = await import('../support/codes.ts');
    const coded = await call(server, 'POST', '/v1/user/code/login', { channel: 'email', to: 'nofactor@example.test', code: lastCode(server.dataDir, 'nofactor@example.test'), flag: 1 });
    assert.equal(coded.status, 200, JSON.stringify(coded.body));
    server.clock.advance(301_000);
    assert.equal((await call(server, 'POST', '/v1/user/sessions/revoke_others', {}, coded.body.token)).status, 200);
  });

  it('a password login finished by its code is itself proven; a ticket dies after 5 minutes', async () => {
    const token = (await call(server, 'POST', '/v1/user/register', { username: 'stepup-fresh', password: PASSWORD })).body.token;
    const setup = await call(server, 'POST', '/v1/user/mfa/totp/setup', undefined, token);
    await call(server, 'POST', '/v1/user/mfa/totp/enable', { code: totpCodeAt(setup.body.secret, server.clock.now()) }, token);
    server.clock.advance(STEP_MS);
    const ticket = (await call(server, 'POST', '/v1/user/login', { username: 'stepup-fresh', password: PASSWORD, flag: 2 })).body.mfa_ticket;
    const session = await call(server, 'POST', '/v1/user/mfa/verify', { mfa_ticket: ticket, method: 'totp', code: totpCodeAt(setup.body.secret, server.clock.now()) });
    assert.equal((await call(server, 'POST', '/v1/user/mfa/recovery_codes', undefined, session.body.token)).status, 200);
    const stale = (await call(server, 'POST', '/v1/user/login', { username: 'stepup-fresh', password: PASSWORD, flag: 2 })).body.mfa_ticket;
    server.clock.advance(5 * 60_000 + 1);
    const expired = await call(server, 'POST', '/v1/user/mfa/verify', { mfa_ticket: stale, method: 'totp', code: totpCodeAt(setup.body.secret, server.clock.now()) });
    assert.deepEqual([expired.status, expired.body.code], [410, 'expired'], 'a ticket lives 5 minutes');
  });
});

describe('an administrator resets a user\'s second factors', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ mfa: { secret_key: { id: 'k1', key: randomBytes(32).toString('base64') } } });
  });
  after(async () => server?.stop());

  it('removes TOTP and the recovery codes, ends every session, audits it; a plain user cannot', async () => {
    const { createAccount } = await import('../../src/flows/password/password-flow.ts');
    await createAccount(server.runtime, { username: 'mfa-admin', password: PASSWORD }, 'admin');
    const admin = (await call(server, 'POST', '/v1/user/login', { username: 'mfa-admin', password: PASSWORD, flag: 1 })).body.token;
    const user = await call(server, 'POST', '/v1/user/register', { username: 'mfa-lost-phone', password: PASSWORD });
    const setup = await call(server, 'POST', '/v1/user/mfa/totp/setup', undefined, user.body.token);
    const { recovery_codes: codes } = (await call(server, 'POST', '/v1/user/mfa/totp/enable', { code: totpCodeAt(setup.body.secret, Date.now()) }, user.body.token)).body;

    assert.equal((await call(server, 'DELETE', `/v1/manager/users/${user.body.uid}/mfa`, undefined, user.body.token)).status, 403, 'not an admin');
    const reset = await call(server, 'DELETE', `/v1/manager/users/${user.body.uid}/mfa`, undefined, admin);
    assert.deepEqual([reset.status, reset.body.revoked], [200, 1]);
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, user.body.token)).status, 401, 'their sessions ended');
    const login = await call(server, 'POST', '/v1/user/login', { username: 'mfa-lost-phone', password: PASSWORD, flag: 1 });
    assert.equal(typeof login.body.token, 'string', 'the password alone signs in again');
    assert.equal((await call(server, 'GET', '/v1/user/mfa', undefined, login.body.token)).body.recovery_codes_left, 0);
    assert.equal(codes.length, 10);
    const audit = await call(server, 'GET', `/v1/manager/audit?uid=${user.body.uid}&type=mfa_reset`, undefined, admin);
    assert.equal(audit.body.events[0].reason, `admin:${(await call(server, 'GET', '/v1/user/current', undefined, admin)).body.uid}; all:1; totp:1; passkeys:0`);
    assert.equal((await call(server, 'DELETE', '/v1/manager/users/nobody/mfa', undefined, admin)).status, 404);
  });
});

describe('mfa.require_for_admins', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ mfa: { secret_key: { id: 'k1', key: randomBytes(32).toString('base64') }, require_for_admins: true } });
  });
  after(async () => server?.stop());

  it('an administrator can use no admin route until they enrol a second factor and sign in with it', async () => {
    const { createAccount } = await import('../../src/flows/password/password-flow.ts');
    await createAccount(server.runtime, { username: 'must-enrol', password: PASSWORD }, 'admin');
    const admin = (await call(server, 'POST', '/v1/user/login', { username: 'must-enrol', password: PASSWORD, flag: 1 })).body.token;
    const refused = await call(server, 'GET', '/v1/manager/users', undefined, admin);
    assert.deepEqual([refused.status, refused.body.code, refused.body.details], [403, 'forbidden', { enrol_second_factor: true }]);
    const setup = await call(server, 'POST', '/v1/user/mfa/totp/setup', undefined, admin);
    assert.equal((await call(server, 'POST', '/v1/user/mfa/totp/enable', { code: totpCodeAt(setup.body.secret, Date.now()) }, admin)).status, 200);
    const stillWeak = await call(server, 'GET', '/v1/manager/users', undefined, admin);
    assert.deepEqual([stillWeak.status, stillWeak.body.details], [403, { second_factor_required: true }], 'this session never showed the factor');
    const relogin = await call(server, 'POST', '/v1/user/login', { username: 'must-enrol', password: PASSWORD, flag: 1 });
    assert.equal(relogin.body.mfa_required, true, 'their password logins now take the second step');
    const strong = await call(server, 'POST', '/v1/user/mfa/verify', { mfa_ticket: relogin.body.mfa_ticket, method: 'totp', code: nextCode(setup.body.secret) });
    assert.equal((await call(server, 'GET', '/v1/manager/users', undefined, strong.body.token)).status, 200);
  });
});

describe('QR login of an account with a second factor', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      mfa: { secret_key: { id: 'k1', key: randomBytes(32).toString('base64') } },
      rate_limits: { login: { max: 100_000 }, register: { max: 100_000 }, qr_create: { max: 100_000 }, qr_exchange: { max: 100_000 } },
    });
  });
  after(async () => server?.stop());

  async function qrLogin(appToken: string) {
    const request = await loginRequest(server);
    assert.equal((await scan(server, { uid: '', token: appToken }, request.uuid)).status, 200);
    assert.equal((await grant(server, { uid: '', token: appToken }, request.uuid, true)).status, 200);
    const status = await poll(server, request.uuid, request.poll_secret, 'scanned');
    return exchange(server, status.body.auth_code, request.uuid, request.poll_secret);
  }

  it('an approval by a phone that showed no second factor of its own makes the browser take the second step', async () => {
    const phone = (await call(server, 'POST', '/v1/user/register', { username: 'qr-weak-phone', password: PASSWORD, flag: 0 })).body.token;
    const setup = await call(server, 'POST', '/v1/user/mfa/totp/setup', undefined, phone);
    await call(server, 'POST', '/v1/user/mfa/totp/enable', { code: totpCodeAt(setup.body.secret, Date.now()) }, phone);
    const answer = await qrLogin(phone);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.token, undefined, 'a password-only phone (enrolled after it signed in) is one factor: no session yet');
    assert.equal(answer.body.mfa_required, true);
    const done = await call(server, 'POST', '/v1/user/mfa/verify', { mfa_ticket: answer.body.mfa_ticket, method: 'totp', code: nextCode(setup.body.secret) });
    assert.equal(done.status, 200, JSON.stringify(done.body));
    const current = await call(server, 'GET', '/v1/user/current', undefined, done.body.token);
    assert.deepEqual([current.body.session.method, current.body.session.amr, current.body.session.device_flag], ['qr', ['qr', 'otp'], 1]);
  });

  it('an approval by a phone that took its own second step gives the browser its session at once', async () => {
    await call(server, 'POST', '/v1/user/register', { username: 'qr-strong-phone', password: PASSWORD, flag: 0 });
    const first = (await call(server, 'POST', '/v1/user/login', { username: 'qr-strong-phone', password: PASSWORD, flag: 1 })).body.token;
    const setup = await call(server, 'POST', '/v1/user/mfa/totp/setup', undefined, first);
    const { recovery_codes: codes } = (await call(server, 'POST', '/v1/user/mfa/totp/enable', { code: totpCodeAt(setup.body.secret, Date.now()) }, first)).body;
    const ticket = (await call(server, 'POST', '/v1/user/login', { username: 'qr-strong-phone', password: PASSWORD, flag: 0 })).body.mfa_ticket;
    const phone = (await call(server, 'POST', '/v1/user/mfa/verify', { mfa_ticket: ticket, method: 'recovery', code: codes[0] })).body.token;
    const answer = await qrLogin(phone);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(typeof answer.body.token, 'string', 'the phone showed its second factor: the approval is strong');
  });
});
