import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { call } from '../support/server.ts';
import { codeTestLimits, lastCode, readOutbox, startCodeTestServer, wrongCodes, type CodeTestServer } from '../support/codes.ts';
import { REDIS_URL, skipUnless, uniquePrefix } from '../support/services.ts';
import { deleteRedisKeys } from '../support/redis.ts';

const MINUTE = 60_000;

describe('one-time codes end to end (console sender, embedded store)', () => {
  let server: CodeTestServer;
  before(async () => {
    server = await startCodeTestServer();
  });
  after(async () => {
    await server.stop();
  });

  const send = (channel: string, to: string, purpose: string) => call(server, 'POST', '/v1/user/code/send', { channel, to, purpose });
  const codeLogin = (channel: string, to: string, code: string, flag = 1) =>
    call(server, 'POST', '/v1/user/code/login', { channel, to, code, flag });
  /** Past the resend cooldown, so the next code to the same destination can be sent. */
  const afterCooldown = () => server.clock.advance(MINUTE + 1000);

  it('an email code login creates the account; a second code login finds the same account', async () => {
    const sent = await send('email', ' Carol@Example.test ', 'login');
    assert.equal(sent.status, 200);
    assert.deepEqual(sent.body, { status: 200, resend_after: 60 });
    const first = await codeLogin('email', 'carol@example.test', lastCode(server.dataDir, 'carol@example.test'));
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.match(first.body.token, /^[A-Za-z0-9_-]{43}$/);
    const current = await call(server, 'GET', '/v1/user/current', undefined, first.body.token);
    assert.equal(current.body.email, 'carol@example.test');
    assert.equal(current.body.session.method, 'code');

    afterCooldown();
    assert.equal((await send('email', 'CAROL@example.test', 'login')).status, 200);
    const second = await codeLogin('email', 'carol@example.test', lastCode(server.dataDir, 'carol@example.test'), 2);
    assert.equal(second.status, 200);
    assert.equal(second.body.uid, first.body.uid, 'the same account, not a new one');
  });

  it('an SMS login code for an unknown number is not sent, and even the right code gives 401 and no account', async () => {
    const to = '86-13900000001';
    const before = readOutbox(server.dataDir).length;
    const drawn = server.random.codes.length;
    assert.equal((await send('sms', to, 'login')).status, 200);
    assert.equal(readOutbox(server.dataDir).length, before, 'nothing delivered');
    const undelivered = server.random.codes[drawn];
    assert.ok(undelivered !== undefined);
    const answer = await codeLogin('sms', to, undelivered);
    assert.equal(answer.status, 401);
    assert.equal(answer.body.code, 'invalid_credentials');
    assert.equal(await server.runtime.accounts.findByPhone('86', '13900000001'), null);
  });

  it('pwdforget sets the new password and ends every session of the account', async () => {
    const registered = await call(server, 'POST', '/v1/user/register', { username: 'dave', password: 'old password', email: 'dave@example.test', flag: 0 });
    assert.equal(registered.status, 201);
    // Only a proven address can reset (test/security/accounts-unverified-address.test.ts).
    await server.runtime.accounts.markVerified(registered.body.uid, { channel: 'email', email: 'dave@example.test' }, Date.now());
    const web = await call(server, 'POST', '/v1/user/login', { username: 'dave', password: 'old password', flag: 1 });
    const pc = await call(server, 'POST', '/v1/user/login', { username: 'dave@example.test', password: 'old password', flag: 2 });
    const tokens = [registered.body.token, web.body.token, pc.body.token];

    assert.equal((await send('email', 'dave@example.test', 'reset_password')).status, 200);
    const code = lastCode(server.dataDir, 'dave@example.test');
    const weak = await call(server, 'POST', '/v1/user/pwdforget', { channel: 'email', to: 'dave@example.test', code, new_password: 'short' });
    assert.equal(weak.status, 400);
    assert.equal(weak.body.details.field, 'new_password');

    const reset = await call(server, 'POST', '/v1/user/pwdforget', { channel: 'email', to: 'dave@example.test', code, new_password: 'new password!' });
    assert.equal(reset.status, 200, 'a refused weak password did not use up the code');
    for (const token of tokens) assert.equal((await call(server, 'GET', '/v1/user/current', undefined, token)).status, 401);
    assert.equal((await call(server, 'POST', '/v1/user/login', { username: 'dave', password: 'old password', flag: 1 })).status, 401);
    assert.equal((await call(server, 'POST', '/v1/user/login', { username: 'dave', password: 'new password!', flag: 1 })).status, 200);
    const again = await call(server, 'POST', '/v1/user/pwdforget', { channel: 'email', to: 'dave@example.test', code, new_password: 'third password' });
    assert.equal(again.status, 410, 'the reset code works once');
  });

  it('a code from one purpose does not work for another', async () => {
    await call(server, 'POST', '/v1/user/register', { username: 'erin', password: 'correct horse', email: 'erin@example.test' });
    assert.equal((await send('email', 'erin@example.test', 'login')).status, 200);
    const code = lastCode(server.dataDir, 'erin@example.test');
    const reset = await call(server, 'POST', '/v1/user/pwdforget', { channel: 'email', to: 'erin@example.test', code, new_password: 'new password!' });
    assert.equal(reset.status, 410);
    assert.equal((await codeLogin('email', 'erin@example.test', code)).status, 200);
  });

  it('a code expires five minutes after it was sent; wrong guesses do not extend it', async () => {
    assert.equal((await send('email', 'ivan@example.test', 'login')).status, 200);
    const code = lastCode(server.dataDir, 'ivan@example.test');
    server.clock.advance(4 * MINUTE);
    assert.equal((await codeLogin('email', 'ivan@example.test', wrongCodes(code, 1)[0] ?? '')).status, 401);
    server.clock.advance(MINUTE + 1000);
    assert.equal((await codeLogin('email', 'ivan@example.test', code)).status, 410);
  });

  it('a resend within 60 s is 429 with Retry-After, whatever the purpose; after it, a new code joins the old and using either ends both', async () => {
    assert.equal((await send('email', 'judy@example.test', 'login')).status, 200);
    const old = lastCode(server.dataDir, 'judy@example.test');
    server.clock.advance(20_000);
    for (const purpose of ['login', 'register', 'reset_password']) {
      const resend = await send('email', 'judy@example.test', purpose);
      assert.equal(resend.status, 429);
      assert.equal(resend.body.code, 'rate_limited');
      assert.equal(resend.headers.get('retry-after'), '40');
    }
    server.clock.advance(41_000);
    assert.equal((await send('email', 'judy@example.test', 'login')).status, 200);
    const fresh = lastCode(server.dataDir, 'judy@example.test');
    // The old code still works: a send by someone else must not kill the one in the owner's inbox.
    assert.equal((await codeLogin('email', 'judy@example.test', old)).status, 200);
    if (fresh !== old) assert.equal((await codeLogin('email', 'judy@example.test', fresh)).status, 410, 'used up with the old one');
  });

  it('a banned account gets 403 account_disabled with a right code', async () => {
    const registered = await call(server, 'POST', '/v1/user/register', { username: 'mallory', password: 'correct horse', email: 'mallory@example.test' });
    await server.runtime.accounts.markVerified(registered.body.uid, { channel: 'email', email: 'mallory@example.test' }, Date.now());
    await server.runtime.accounts.setStatus(registered.body.uid, 'banned', Date.now());
    assert.equal((await send('email', 'mallory@example.test', 'login')).status, 200);
    const answer = await codeLogin('email', 'mallory@example.test', lastCode(server.dataDir, 'mallory@example.test'));
    assert.equal(answer.status, 403);
    assert.equal(answer.body.code, 'account_disabled');
  });

  it('code/send answers byte for byte the same for existing and unknown destinations', async () => {
    await call(server, 'POST', '/v1/user/register', {
      username: 'olivia', password: 'correct horse', email: 'olivia@example.test', zone: '86', phone: '13700000000',
    });
    const raw = async (body: unknown) => {
      const response = await fetch(`${server.url}/v1/user/code/send`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
      });
      return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
    };
    const pairs: Array<[unknown, unknown]> = [
      [{ channel: 'email', to: 'olivia@example.test', purpose: 'reset_password' }, { channel: 'email', to: 'nobody@example.test', purpose: 'reset_password' }],
      [{ channel: 'sms', to: '86-13700000000', purpose: 'login' }, { channel: 'sms', to: '86-13700000099', purpose: 'login' }],
    ];
    for (const [known, unknown] of pairs) {
      const a = await raw(known);
      const b = await raw(unknown);
      assert.deepEqual(a, b);
      assert.equal(a.status, 200);
      // and the resend within the cooldown is refused identically, too
      assert.deepEqual(await raw(known), await raw(unknown));
    }
    const delivered = readOutbox(server.dataDir).map((e) => e.to);
    assert.ok(delivered.includes('olivia@example.test') && delivered.includes('86-13700000000'));
    assert.ok(!delivered.includes('nobody@example.test') && !delivered.includes('86-13700000099'));
  });

  it('rejects malformed destinations and codes with 400 naming the field', async () => {
    const cases: Array<[unknown, string]> = [
      [{ channel: 'email', to: '86-13800000000', purpose: 'login' }, 'body.to'],
      [{ channel: 'sms', to: 'a@b.test', purpose: 'login' }, 'body.to'],
      [{ channel: 'sms', to: '+8613800000000', purpose: 'login' }, 'body.to'],
      [{ channel: 'fax', to: 'a@b.test', purpose: 'login' }, 'body.channel'],
      [{ channel: 'email', to: 'a@b.test', purpose: 'admin' }, 'body.purpose'],
    ];
    for (const [body, field] of cases) {
      const answer = await call(server, 'POST', '/v1/user/code/send', body);
      assert.equal(answer.status, 400, JSON.stringify(body));
      assert.equal(answer.body.details.field, field);
    }
    const badCode = await call(server, 'POST', '/v1/user/code/login', { channel: 'email', to: 'a@b.test', code: '12345', flag: 1 });
    assert.equal(badCode.status, 400);
    assert.equal(badCode.body.details.field, 'body.code');
  });

  it('answers junk bodies on every code route with a 4xx in the error model', async () => {
    const bodies: unknown[] = [
      null, 42, 'string', [], {}, { channel: 'email' }, { channel: 'email', to: 42 }, { channel: 'email', to: 'a@b.test', code: 123456, flag: 1 },
      { channel: 'sms', to: '86-1380000\u0000', purpose: 'login' }, { channel: 'email', to: `${'a'.repeat(300)}@b.test`, purpose: 'login' },
      { channel: 'email', to: 'a@b.test', code: '123456', flag: 7 }, { channel: 'email', to: 'a@b.test', code: '123456', new_password: 42 },
      { channel: 'email', to: 'a@b.test', purpose: 'login', extra: true }, { __proto__: { channel: 'email' } },
    ];
    for (const path of ['/v1/user/code/send', '/v1/user/code/login', '/v1/user/pwdforget']) {
      for (const body of bodies) {
        const answer = await call(server, 'POST', path, body);
        assert.ok(answer.status >= 400 && answer.status < 500, `${path} ${JSON.stringify(body)} → ${answer.status}`);
        assert.equal(answer.body.status, answer.status);
        assert.equal(typeof answer.body.code, 'string');
      }
    }
  });

  it('appconfig advertises code login on the channels the sender can deliver', async () => {
    const answer = await call(server, 'GET', '/v1/common/appconfig');
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body.code_login, { sms: true, email: true });
    assert.deepEqual(answer.body.oidc_providers, []);
    assert.equal(typeof answer.body.qr_login, 'boolean');
  });

  it('no code appears in the metrics', async () => {
    const metrics = await fetch(server.metricsUrl).then((r) => r.text());
    assert.match(metrics, /latchkey_code_sent_total/);
    // Label values are where a code could leak (sample values are counts and durations, whose digits
    // can spell a six-digit code by chance, so they are not searched).
    const labelValues = [...metrics.matchAll(/="([^"]*)"/g)].map((match) => match[1] ?? '');
    assert.ok(labelValues.length > 0);
    for (const { code } of readOutbox(server.dataDir)) {
      assert.ok(!labelValues.some((value) => value.includes(code)), `code ${code} in a label of /metrics`);
    }
  });
});

describe('one-time code settings', () => {
  it('SMS registration, when turned on, creates an account owning the number', async () => {
    const server = await startCodeTestServer({ code_login: { register_by_sms: true } });
    try {
      assert.equal((await call(server, 'POST', '/v1/user/code/send', { channel: 'sms', to: '86-13600000000', purpose: 'register' })).status, 200);
      const answer = await call(server, 'POST', '/v1/user/code/login', { channel: 'sms', to: '86-13600000000', code: lastCode(server.dataDir, '86-13600000000'), flag: 0 });
      assert.equal(answer.status, 200);
      const current = await call(server, 'GET', '/v1/user/current', undefined, answer.body.token);
      assert.equal(current.body.phone, '86-13600000000');
    } finally {
      await server.stop();
    }
  });

  it('a register code by SMS is refused while SMS registration is off', async () => {
    const server = await startCodeTestServer();
    try {
      const answer = await call(server, 'POST', '/v1/user/code/send', { channel: 'sms', to: '86-13600000000', purpose: 'register' });
      assert.equal(answer.status, 400);
      assert.equal(answer.body.details.field, 'purpose');
    } finally {
      await server.stop();
    }
  });

  it('per-IP and per-destination send limits answer 429 with Retry-After', async () => {
    const server = await startCodeTestServer({
      rate_limits: { ...codeTestLimits, code_send_ip: { max: 3, window_seconds: 3600 }, code_send_to: { max: 2, window_seconds: 3600 } },
    });
    try {
      const send = (to: string) => call(server, 'POST', '/v1/user/code/send', { channel: 'email', to, purpose: 'login' });
      // per destination: two sends an hour, even with the cooldown respected
      assert.equal((await send('kim@example.test')).status, 200);
      server.clock.advance(61_000);
      assert.equal((await send('kim@example.test')).status, 200);
      server.clock.advance(61_000);
      const third = await send('kim@example.test');
      assert.equal(third.status, 429);
      assert.ok(Number(third.headers.get('retry-after')) > 60, 'until the hour window ends, not the cooldown');
      // per IP: three requests an hour from this address, and that was the third
      const blocked = await send('lee@example.test');
      assert.equal(blocked.status, 429);
      assert.ok(Number(blocked.headers.get('retry-after')) > 0);
      assert.ok(!readOutbox(server.dataDir).some((e) => e.to === 'lee@example.test'));
    } finally {
      await server.stop();
    }
  });
});

/**
 * Verify-and-consume is built from Kv compare-and-set / compare-and-delete: the same races are run
 * on the embedded SQLite store and on Redis (Lua scripts), where the calls really interleave.
 */
function atomicitySuite(overrides: () => Record<string, unknown>, cleanUp: () => Promise<void>): void {
  let server: CodeTestServer;
  before(async () => {
    server = await startCodeTestServer(overrides());
  });
  after(async () => {
    await server.stop();
    await cleanUp();
  });
  const send = (channel: string, to: string, purpose: string) => call(server, 'POST', '/v1/user/code/send', { channel, to, purpose });
  const codeLogin = (channel: string, to: string, code: string, flag = 1) =>
    call(server, 'POST', '/v1/user/code/login', { channel, to, code, flag });

  it('50 simultaneous verifications of one right code log in exactly once', async () => {
    assert.equal((await send('email', 'frank@example.test', 'login')).status, 200);
    const code = lastCode(server.dataDir, 'frank@example.test');
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => codeLogin('email', 'frank@example.test', code, i % 3)));
    const statuses = answers.map((a) => a.status);
    assert.equal(statuses.filter((s) => s === 200).length, 1, `statuses: ${statuses.join(',')}`);
    assert.ok(statuses.every((s) => s === 200 || s === 410), `losers see the code gone: ${statuses.join(',')}`);
    const winner = answers.find((a) => a.status === 200);
    const sessions = await call(server, 'GET', '/v1/user/sessions', undefined, winner?.body.token);
    assert.equal(sessions.body.length, 1, 'one session, one account');
  });

  it('five wrong guesses burn the code: the right one sixth gets 410 expired', async () => {
    assert.equal((await send('email', 'grace@example.test', 'login')).status, 200);
    const code = lastCode(server.dataDir, 'grace@example.test');
    for (const wrong of wrongCodes(code, 5)) {
      const answer = await codeLogin('email', 'grace@example.test', wrong);
      assert.equal(answer.status, 401);
      assert.equal(answer.body.code, 'invalid_credentials');
    }
    const sixth = await codeLogin('email', 'grace@example.test', code);
    assert.equal(sixth.status, 410);
    assert.equal(sixth.body.code, 'expired');
  });

  it('50 simultaneous wrong guesses get at most five wrong answers before the code is gone', async () => {
    assert.equal((await send('email', 'heidi@example.test', 'login')).status, 200);
    const code = lastCode(server.dataDir, 'heidi@example.test');
    const answers = await Promise.all(wrongCodes(code, 50).map((wrong) => codeLogin('email', 'heidi@example.test', wrong)));
    const statuses = answers.map((a) => a.status);
    assert.equal(statuses.filter((s) => s === 401).length, 5, `statuses: ${statuses.join(',')}`);
    assert.equal(statuses.filter((s) => s === 410).length, 45);
    assert.equal((await codeLogin('email', 'heidi@example.test', code)).status, 410);
  });

}

const redisSkip = await skipUnless('redis');
describe('one-time code races (embedded store)', () => atomicitySuite(() => ({}), async () => {}));
describe('one-time code races (Redis)', { skip: redisSkip }, () => {
  const prefix = uniquePrefix('codes');
  atomicitySuite(() => ({ store: REDIS_URL, store_prefix: prefix }), () => deleteRedisKeys(prefix));
});
