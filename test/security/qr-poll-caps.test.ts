/**
 * Hole 13 (QR part): a held long-poll is a socket and a store subscription on the node. Without a
 * cap one client held 3,000 polls on one uuid. Past the cap per login request or per client
 * address a poll is refused at once (429 with Retry-After) instead of being held.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { ConfigError, parseConfig } from '../../src/config/config.ts';
import { startTestServer, testDefaults, type TestServer } from '../support/server.ts';
import {
  loginRequest, poll, registerApp, scan, until, waitingPollsOf, type Polled, type WaitingPolls,
} from '../support/qr-clients.ts';

const POLL_TIMEOUT_MS = 4_000;
const generousLimits = { ...testDefaults.rate_limits, qr_create: { max: 100_000 } };

function assertRefusedAtOnce(answer: Polled): void {
  assert.equal(answer.status, 429, JSON.stringify(answer.body));
  assert.equal(answer.body.code, 'rate_limited');
  assert.ok(Number(answer.headers.get('retry-after')) >= 1, 'Retry-After');
  // Well before any held poll could answer by timeout (generous: the machine may be loaded).
  assert.ok(answer.tookMs < POLL_TIMEOUT_MS - 1_000, `refused after ${Math.round(answer.tookMs)} ms, not at once`);
}

describe('QR long-polls per login request (default cap 3)', () => {
  let server: TestServer;
  let waiting: WaitingPolls;
  before(async () => {
    server = await startTestServer({ rate_limits: generousLimits, qr: { poll_timeout_seconds: POLL_TIMEOUT_MS / 1000 } });
    waiting = waitingPollsOf(server.runtime.kv);
  });
  after(async () => {
    await server.stop();
  });

  it('50 parallel polls of one request: 3 are held and all wake on the scan, 47 are refused at once', async () => {
    const app = await registerApp(server, 'scanner');
    const request = await loginRequest(server);
    let answered = 0;
    const polls = Array.from({ length: 50 }, () => poll(server, request.uuid, request.poll_secret).finally(() => (answered += 1)));
    // Scan only once every poll has been taken up, held or refused: a poll arriving after the scan
    // would start from `scanned` and could take a slot the woken polls just gave back.
    await until('every poll held or answered', async () => answered + (await waiting.count(request.uuid)) >= 50);
    assert.equal((await scan(server, app, request.uuid)).status, 200);
    const answers = await Promise.all(polls);
    const held = answers.filter((answer) => answer.status === 200);
    assert.equal(held.length, 3, `statuses: ${answers.map((a) => a.status)}`);
    for (const answer of held) assert.deepEqual(answer.body, { status: 'scanned' });
    for (const answer of answers.filter((a) => a.status !== 200)) assertRefusedAtOnce(answer);
  });

  it('a poll that has something to say answers even past the cap, and freed slots are reused', async () => {
    const app = await registerApp(server, 'scanner2');
    const request = await loginRequest(server);
    const holding = Array.from({ length: 3 }, () => poll(server, request.uuid, request.poll_secret));
    await waiting.atLeast(request.uuid, 3);
    assertRefusedAtOnce(await poll(server, request.uuid, request.poll_secret));
    const behind = await poll(server, request.uuid, request.poll_secret, 'scanned');
    assert.deepEqual(behind.body, { status: 'waitScan' }, 'a poll that already differs from last_status is not held');
    assert.equal((await scan(server, app, request.uuid)).status, 200);
    await Promise.all(holding);
    const next = poll(server, request.uuid, request.poll_secret, 'scanned');
    assert.equal((await next).status, 200, 'the slots were released');
  });

  it('a client that hangs up frees its slot', async () => {
    const request = await loginRequest(server);
    const query = new URLSearchParams({ uuid: request.uuid, poll_secret: request.poll_secret });
    // node:http, so hanging up closes the socket there and then.
    const abandoned = Array.from({ length: 3 }, () => get(`${server.url}/v1/user/loginstatus?${query}`).on('error', () => {}));
    await waiting.atLeast(request.uuid, 3);
    for (const hungUp of abandoned) hungUp.destroy();
    // Freed by the hang-ups themselves, well before the held polls' timeout could free them.
    await waiting.none(request.uuid, POLL_TIMEOUT_MS - 1_000);
    const answers = await Promise.all(Array.from({ length: 3 }, () => poll(server, request.uuid, request.poll_secret)));
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200]);
  });
});

describe('QR long-polls per client address', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      rate_limits: generousLimits,
      qr: { poll_timeout_seconds: POLL_TIMEOUT_MS / 1000, max_polls_per_ip: 5 },
    });
  });
  after(async () => {
    await server.stop();
  });

  it('one address polling 12 requests at once with a cap of 5: 5 held, 7 refused at once', async () => {
    const requests = await Promise.all(Array.from({ length: 12 }, () => loginRequest(server)));
    const answers = await Promise.all(requests.map((request) => poll(server, request.uuid, request.poll_secret)));
    const held = answers.filter((answer) => answer.status === 200);
    assert.equal(held.length, 5, `statuses: ${answers.map((a) => a.status)}`);
    for (const answer of held) assert.deepEqual(answer.body, { status: 'waitScan' });
    for (const answer of answers.filter((a) => a.status !== 200)) assertRefusedAtOnce(answer);
  });
});

describe('QR long-poll caps in the config', () => {
  it('default 20 per address and 3 per request; zero, negative or fractional caps are refused', () => {
    const defaults = parseConfig({});
    assert.equal(defaults.qr.maxPollsPerIp, 20);
    assert.equal(defaults.qr.maxPollsPerRequest, 3);
    for (const bad of [0, -1, 2.5, 'many']) {
      assert.throws(() => parseConfig({ qr: { max_polls_per_ip: bad } }), ConfigError, `max_polls_per_ip ${bad}`);
      assert.throws(() => parseConfig({ qr: { max_polls_per_request: bad } }), ConfigError, `max_polls_per_request ${bad}`);
    }
  });
});
