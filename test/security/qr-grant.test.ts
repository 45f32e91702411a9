/**
 * Who may answer a QR login, and the exchange's attempt budget. The approval belongs to the one app
 * session that scanned (the auth code carries it, qr-approver.test.ts), so no other session — not
 * even another phone of the same account — may answer or take over the scan; and the exchange's
 * rate limit is reserved before the exchange runs, so parallel guesses cannot all slip past it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { call, startTestServer, testDefaults, type TestServer } from '../support/server.ts';
import { exchange, grant, loginRequest, poll, scan, type AppUser } from '../support/qr-clients.ts';

const generousLimits = { ...testDefaults.rate_limits, qr_create: { max: 100_000 }, qr_exchange: { max: 100_000 } };
/** Two phones per account, so a second app session of the scanner's own account exists. */
const twoPhones = { app: { mode: 'multi', cap: 10 }, web: { mode: 'multi', cap: 10 }, pc: { mode: 'multi', cap: 10 } };
let names = 0;

async function phone(server: TestServer, username: string, register: boolean): Promise<AppUser> {
  const body = { username, password: 'correct horse', flag: 0, device: { device_id: `${username}-${names}`, device_name: 'Phone', device_model: 'Pixel' } };
  const answer = await call(server, 'POST', register ? '/v1/user/register' : '/v1/user/login', body);
  assert.equal(answer.status, register ? 201 : 200, JSON.stringify(answer.body));
  return { uid: answer.body.uid, token: answer.body.token };
}

/** One account signed in on two phones. */
async function twoPhonesOf(server: TestServer): Promise<[AppUser, AppUser]> {
  const username = `owner${(names += 1)}`;
  return [await phone(server, username, true), await phone(server, username, false)];
}

describe('only the scanning app session answers a QR login', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ rate_limits: generousLimits, device_policies: twoPhones, qr: { poll_timeout_seconds: 4 } });
  });
  after(async () => {
    await server.stop();
  });

  it('another app session of the same account cannot approve or reject: 403, the request stays scanned', async () => {
    const [scanner, otherPhone] = await twoPhonesOf(server);
    const request = await loginRequest(server);
    assert.equal((await scan(server, scanner, request.uuid)).status, 200);
    for (const approve of [true, false]) {
      const refused = await grant(server, otherPhone, request.uuid, approve);
      assert.equal(refused.status, 403, JSON.stringify(refused.body));
      assert.equal(refused.body.code, 'forbidden');
    }
    assert.deepEqual((await poll(server, request.uuid, request.poll_secret, 'waitScan')).body, { status: 'scanned' });
    assert.equal((await grant(server, scanner, request.uuid, true)).status, 200, 'the scanner still can');
  });

  it('another app session of the same account cannot take over the scan: 409', async () => {
    const [scanner, otherPhone] = await twoPhonesOf(server);
    const request = await loginRequest(server);
    assert.equal((await scan(server, scanner, request.uuid)).status, 200);
    const second = await scan(server, otherPhone, request.uuid);
    assert.equal(second.status, 409, JSON.stringify(second.body));
    assert.equal(second.body.code, 'conflict');
  });

  it('a scanner whose session ended cannot answer: 401', async () => {
    const [scanner] = await twoPhonesOf(server);
    const request = await loginRequest(server);
    assert.equal((await scan(server, scanner, request.uuid)).status, 200);
    assert.equal((await call(server, 'POST', '/v1/user/quit', undefined, scanner.token)).status, 200);
    assert.equal((await grant(server, scanner, request.uuid, true)).status, 401);
  });

  it('approvals racing their approver\'s logout (10 at once): no exchange after the logout succeeds', async () => {
    const rounds = await Promise.all(Array.from({ length: 10 }, async () => {
      const [scanner] = await twoPhonesOf(server);
      const request = await loginRequest(server);
      assert.equal((await scan(server, scanner, request.uuid)).status, 200);
      await Promise.all([grant(server, scanner, request.uuid, true), call(server, 'POST', '/v1/user/quit', undefined, scanner.token)]);
      const polled = await poll(server, request.uuid, request.poll_secret, 'scanned');
      if (polled.body.status !== 'authed') return 'not approved';
      return String((await exchange(server, polled.body.auth_code, request.uuid, request.poll_secret)).status);
    }));
    assert.ok(rounds.every((outcome) => outcome === 'not approved' || outcome === '410'), `outcomes: ${rounds}`);
  });
});

describe('the QR exchange budget is reserved before the exchange', () => {
  it('40 parallel guesses from one address with a budget of 5: exactly 5 are looked at, 35 get 429 at once', async () => {
    const server = await startTestServer({ rate_limits: { ...generousLimits, qr_exchange: { max: 5, window_seconds: 60 } } });
    try {
      const guess = () => exchange(server, randomBytes(32).toString('base64url'), randomBytes(16).toString('hex'), randomBytes(32).toString('base64url'));
      const answers = await Promise.all(Array.from({ length: 40 }, guess));
      const statuses = answers.map((answer) => answer.status);
      assert.equal(statuses.filter((s) => s === 404).length, 5, `statuses: ${statuses}`);
      assert.equal(statuses.filter((s) => s === 429).length, 35, `statuses: ${statuses}`);
      const limited = answers.find((answer) => answer.status === 429);
      assert.ok(limited !== undefined && Number(limited.headers.get('retry-after')) >= 1);
    } finally {
      await server.stop();
    }
  });
});
