import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { call, startTestServer, testDefaults, type TestServer } from '../support/server.ts';
import {
  browserDevice, exchange, grant, loginRequest, poll, registerApp, scan, waitingPollsOf, type AppUser, type BrowserRequest, type WaitingPolls,
} from '../support/qr-clients.ts';

const POLL_TIMEOUT_MS = 4_000;
const generousLimits = { ...testDefaults.rate_limits, qr_create: { max: 100_000 }, qr_exchange: { max: 100_000 } };
const randomCode = (): string => randomBytes(32).toString('base64url');

/** Scans and approves; returns the auth code as the browser collects it. */
async function approved(server: TestServer, app: AppUser, request: BrowserRequest): Promise<string> {
  assert.equal((await scan(server, app, request.uuid)).status, 200);
  assert.equal((await grant(server, app, request.uuid, true)).status, 200);
  const status = await poll(server, request.uuid, request.poll_secret, 'scanned');
  assert.equal(status.body.status, 'authed');
  return status.body.auth_code as string;
}

describe('QR login end to end (embedded store)', () => {
  let server: TestServer;
  let alice: AppUser;
  let mallory: AppUser;
  let waiting: WaitingPolls;
  before(async () => {
    server = await startTestServer({ rate_limits: generousLimits, qr: { poll_timeout_seconds: POLL_TIMEOUT_MS / 1000 } });
    waiting = waitingPollsOf(server.runtime.kv);
    alice = await registerApp(server, 'alice');
    mallory = await registerApp(server, 'mallory');
  });
  after(async () => {
    await server.stop();
  });

  it('browser asks, app scans and approves, browser exchanges: a session of the scanner on the browser', async () => {
    const request = await loginRequest(server);
    assert.match(request.uuid, /^[0-9a-f]{32}$/);
    assert.match(request.poll_secret, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(request.qrcode.text, `latchkey://qr/${request.uuid}`);
    assert.match(request.qrcode.svg, /^<svg[\s\S]*<\/svg>\s*$/);
    assert.ok(!request.qrcode.svg.includes(request.poll_secret) && !request.qrcode.text.includes(request.poll_secret));
    assert.ok(Math.abs(request.expires_at - (Date.now() + 120_000)) < 5_000);

    const waitingForScan = poll(server, request.uuid, request.poll_secret);
    await waiting.atLeast(request.uuid, 1);
    const scanned = await scan(server, alice, request.uuid);
    const scannedAt = performance.now();
    assert.equal(scanned.status, 200, JSON.stringify(scanned.body));
    assert.deepEqual(scanned.body, {
      status: 'scanned',
      requester: { device_name: browserDevice.device_name, device_model: browserDevice.device_model, ip: '127.0.0.1', flag: 1, user_agent: 'node' },
    });
    const sawScan = await waitingForScan;
    assert.deepEqual(sawScan.body, { status: 'scanned' }, 'the poller learns of the scan, not who scanned');
    assert.ok(sawScan.at - scannedAt < 1_000, `the poll answered ${Math.round(sawScan.at - scannedAt)} ms after the scan`);

    const waitingForAnswer = poll(server, request.uuid, request.poll_secret, 'scanned');
    await waiting.atLeast(request.uuid, 1);
    const granted = await grant(server, alice, request.uuid, true);
    assert.equal(granted.status, 200);
    assert.deepEqual(granted.body, { status: 'authed' }, 'the scanner never gets the auth code');
    const authed = await waitingForAnswer;
    assert.equal(authed.body.status, 'authed');
    assert.match(authed.body.auth_code, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(!JSON.stringify([sawScan.body, authed.body]).includes(alice.uid), 'the poller never sees the scanner uid');

    const login = await exchange(server, authed.body.auth_code, request.uuid, request.poll_secret);
    assert.equal(login.status, 200, JSON.stringify(login.body));
    assert.equal(login.body.uid, alice.uid);
    assert.equal(login.body.username, 'alice');
    assert.equal(login.body.device_flag, 1);
    const current = await call(server, 'GET', '/v1/user/current', undefined, login.body.token);
    assert.equal(current.status, 200);
    assert.equal(current.body.session.method, 'qr');
    assert.equal(current.body.session.device_id, browserDevice.device_id);
    assert.equal(current.body.session.device_name, browserDevice.device_name);
    assert.equal((await call(server, 'GET', '/v1/user/current', undefined, alice.token)).status, 200, 'the app stays signed in');

    const again = await exchange(server, authed.body.auth_code, request.uuid, request.poll_secret);
    assert.equal(again.status, 410);
    assert.equal(again.body.code, 'expired');
    assert.deepEqual((await poll(server, request.uuid, request.poll_secret)).body, { status: 'expired' }, 'a used request reads as expired');

    const audit = await server.runtime.accounts.queryAudit({ uid: alice.uid, limit: 50 });
    const types = audit.map((event) => `${event.type}:${event.result}:${event.reason ?? ''}`);
    for (const expected of ['qr_scan:ok:', 'qr_grant:ok:', 'login:ok:qr']) assert.ok(types.includes(expected), `${expected} in ${types}`);
  });

  it('appconfig advertises QR login', async () => {
    const answer = await call(server, 'GET', '/v1/common/appconfig');
    assert.equal(answer.status, 200);
    assert.equal(answer.body.qr_login, true);
  });

  it('two polls of one request both get the answer', async () => {
    const request = await loginRequest(server, 2);
    const first = poll(server, request.uuid, request.poll_secret);
    const second = poll(server, request.uuid, request.poll_secret);
    await waiting.atLeast(request.uuid, 2);
    assert.equal((await scan(server, alice, request.uuid)).status, 200);
    const answers = await Promise.all([first, second]);
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body, { status: 'scanned' });
      assert.ok(answer.tookMs < POLL_TIMEOUT_MS - 1_000, `answered after ${Math.round(answer.tookMs)} ms`);
    }
  });

  it('a poll with nothing new answers with the current status at its timeout', async () => {
    const request = await loginRequest(server);
    const answer = await poll(server, request.uuid, request.poll_secret);
    assert.deepEqual(answer.body, { status: 'waitScan' });
    assert.ok(answer.tookMs >= POLL_TIMEOUT_MS - 200, `answered after ${Math.round(answer.tookMs)} ms`);
  });

  it('a poll that names a status it did not see answers at once', async () => {
    const request = await loginRequest(server);
    await scan(server, alice, request.uuid);
    const answer = await poll(server, request.uuid, request.poll_secret, 'waitScan');
    assert.deepEqual(answer.body, { status: 'scanned' });
    assert.ok(answer.tookMs < 1_000);
  });

  it('without the poll secret a request cannot be watched: 404 as if it did not exist', async () => {
    const request = await loginRequest(server);
    for (const secret of [undefined, '', randomCode(), request.poll_secret.slice(0, -1), `${request.poll_secret}x`]) {
      const answer = await poll(server, request.uuid, secret);
      assert.equal(answer.status, 404, `secret ${secret}`);
      assert.equal(answer.body.code, 'not_found');
    }
    const unknown = await poll(server, randomBytes(16).toString('hex'), request.poll_secret);
    assert.equal(unknown.status, 404);
  });

  it('the auth code cannot be exchanged before approval, nor with a guessed code', async () => {
    const request = await loginRequest(server);
    const guess = randomCode();
    assert.equal((await exchange(server, guess, request.uuid, request.poll_secret)).status, 404, 'before any scan');
    await scan(server, alice, request.uuid);
    assert.equal((await exchange(server, guess, request.uuid, request.poll_secret)).status, 404, 'scanned, not approved');
    await grant(server, alice, request.uuid, true);
    assert.equal((await exchange(server, guess, request.uuid, request.poll_secret)).status, 404, 'approved, wrong code');
  });

  it('the auth code needs the poll secret: a wrong secret is a 404 and does not burn the code', async () => {
    const request = await loginRequest(server);
    const code = await approved(server, alice, request);
    const other = await loginRequest(server);
    assert.equal((await exchange(server, code, request.uuid, randomCode())).status, 404);
    assert.equal((await exchange(server, code, other.uuid, other.poll_secret)).status, 404, 'another request\'s secret');
    assert.equal((await exchange(server, code, request.uuid, request.poll_secret)).status, 200);
  });

  it('only the account that scanned may answer: others get 403', async () => {
    const unscanned = await loginRequest(server);
    assert.equal((await grant(server, mallory, unscanned.uuid, true)).status, 403, 'nobody scanned yet');

    const request = await loginRequest(server);
    assert.equal((await scan(server, alice, request.uuid)).status, 200);
    for (const approve of [true, false]) {
      const refused = await grant(server, mallory, request.uuid, approve);
      assert.equal(refused.status, 403);
      assert.equal(refused.body.code, 'forbidden');
    }
    const audit = await server.runtime.accounts.queryAudit({ uid: mallory.uid, type: 'qr_grant', limit: 10 });
    assert.ok(audit.some((event) => event.result === 'fail' && event.reason === 'forbidden'));
    assert.deepEqual((await poll(server, request.uuid, request.poll_secret, 'waitScan')).body, { status: 'scanned' }, 'still waiting for alice');
  });

  it('a second scanner is refused with 409; the same account scanning twice is fine', async () => {
    const request = await loginRequest(server);
    assert.equal((await scan(server, alice, request.uuid)).status, 200);
    assert.equal((await scan(server, alice, request.uuid)).status, 200);
    const second = await scan(server, mallory, request.uuid);
    assert.equal(second.status, 409);
    assert.equal(second.body.code, 'conflict');
    assert.equal((await grant(server, alice, request.uuid, true)).status, 200, 'alice can still approve');
  });

  it('only the app scans and answers: a Web session gets 403', async () => {
    const web = await call(server, 'POST', '/v1/user/login', { username: 'alice', password: 'correct horse', flag: 1 });
    const request = await loginRequest(server);
    assert.equal((await scan(server, { uid: alice.uid, token: web.body.token }, request.uuid)).status, 403);
    assert.equal((await scan(server, { uid: alice.uid, token: 'not-a-token' }, request.uuid)).status, 401);
  });

  it('APP is the scanner, never the requester: flag 0 at loginuuid is a 400', async () => {
    for (const flag of ['0', '3', 'web']) {
      const answer = await call(server, 'GET', `/v1/user/loginuuid?flag=${flag}`);
      assert.equal(answer.status, 400, flag);
      assert.equal(answer.body.details.field, 'querystring.flag');
    }
  });

  it('a rejected request: the poll says rejected, no auth code exists, it cannot be approved after', async () => {
    const request = await loginRequest(server);
    await scan(server, alice, request.uuid);
    const waitingForAnswer = poll(server, request.uuid, request.poll_secret, 'scanned');
    await waiting.atLeast(request.uuid, 1);
    const rejected = await grant(server, alice, request.uuid, false);
    assert.deepEqual(rejected.body, { status: 'rejected' });
    assert.deepEqual((await waitingForAnswer).body, { status: 'rejected' });
    assert.deepEqual((await poll(server, request.uuid, request.poll_secret)).body, { status: 'rejected' });
    assert.equal((await grant(server, alice, request.uuid, true)).status, 409);
    assert.equal((await exchange(server, randomCode(), request.uuid, request.poll_secret)).status, 404);
    const keys = (await server.runtime.accounts.queryAudit({ uid: alice.uid, type: 'qr_reject', limit: 5 })).length;
    assert.ok(keys >= 1, 'the rejection is audited');
  });

  it('50 simultaneous exchanges of one auth code: exactly one session', async () => {
    const request = await loginRequest(server);
    const code = await approved(server, alice, request);
    const before = await call(server, 'GET', '/v1/user/sessions', undefined, alice.token);
    const answers = await Promise.all(Array.from({ length: 50 }, () => exchange(server, code, request.uuid, request.poll_secret)));
    const statuses = answers.map((answer) => answer.status);
    assert.equal(statuses.filter((s) => s === 200).length, 1, `statuses: ${statuses}`);
    assert.equal(statuses.filter((s) => s === 410).length, 49, `statuses: ${statuses}`);
    const after = await call(server, 'GET', '/v1/user/sessions', undefined, alice.token);
    assert.equal(after.body.length, before.body.length + 1);
  });
});

describe('QR login expiry and limits (embedded store)', () => {
  let server: TestServer;
  let alice: AppUser;
  before(async () => {
    server = await startTestServer({
      rate_limits: { ...generousLimits, qr_create: { max: 6, window_seconds: 60 }, qr_exchange: { max: 3, window_seconds: 60 } },
      qr: { request_ttl_seconds: 1, auth_code_ttl_seconds: 1, poll_timeout_seconds: 5 },
    });
    alice = await registerApp(server, 'alice');
  });
  after(async () => {
    await server.stop();
  });

  it('an unscanned request lapses: a waiting poll says expired, a late scan gets 410', async () => {
    const request = await loginRequest(server);
    const answer = await poll(server, request.uuid, request.poll_secret);
    assert.deepEqual(answer.body, { status: 'expired' });
    assert.ok(answer.tookMs < 3_000, `the poll answered ${Math.round(answer.tookMs)} ms in, at the lapse, not at its timeout`);
    const late = await scan(server, alice, request.uuid);
    assert.equal(late.status, 410);
    assert.equal(late.body.code, 'expired');
    assert.deepEqual((await poll(server, request.uuid, request.poll_secret)).body, { status: 'expired' });
  });

  it('an auth code not exchanged in time is gone: 410, and the poll says expired', async () => {
    const request = await loginRequest(server);
    const code = await approved(server, alice, request);
    await sleep(1_200); // past the 1 s auth code TTL
    const late = await exchange(server, code, request.uuid, request.poll_secret);
    assert.equal(late.status, 410);
    assert.equal(late.body.code, 'expired');
    assert.deepEqual((await poll(server, request.uuid, request.poll_secret)).body, { status: 'expired' });
  });

  it('creating requests and exchanging codes are rate limited per address', async () => {
    const answers = await Promise.all(Array.from({ length: 7 }, () => call(server, 'GET', '/v1/user/loginuuid?flag=1')));
    const limited = answers.find((answer) => answer.status === 429);
    assert.ok(limited, `statuses: ${answers.map((a) => a.status)}`);
    assert.equal(limited.body.code, 'rate_limited');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    const guesses = await Promise.all(
      Array.from({ length: 4 }, () => exchange(server, randomCode(), randomBytes(16).toString('hex'), randomCode())),
    );
    // Earlier tests of this server spent part of the budget; what is left answers 404, the rest 429.
    const statuses = guesses.map((a) => a.status);
    assert.ok(statuses.includes(429) && statuses.every((s) => s === 404 || s === 429), `statuses: ${statuses}`);
  });
});

describe('QR long-poll and shutdown', () => {
  it('a waiting poll answers at once when its node shuts down, instead of holding the shutdown', async () => {
    const server = await startTestServer({ qr: { poll_timeout_seconds: 20 } });
    const waiting = waitingPollsOf(server.runtime.kv);
    const request = await loginRequest(server);
    const held = poll(server, request.uuid, request.poll_secret);
    await waiting.atLeast(request.uuid, 1);
    const stopping = performance.now();
    await server.stop();
    assert.ok(performance.now() - stopping < 2_000);
    const answer = await held;
    assert.deepEqual(answer.body, { status: 'waitScan' });
  });
});
