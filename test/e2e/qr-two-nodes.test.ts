/**
 * QR login across two latchkey processes sharing only their stores (Redis for one-time state,
 * one SQLite file for accounts): the browser talks to node A, the app to node B. The browser's
 * long-poll on A must be woken by B's changes through Redis pub/sub, promptly, not by its periodic
 * re-read or its timeout (octo-server's per-process channel map could not do this, docs/octo-server.md §8.20).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REDIS_URL, skipUnless, uniquePrefix } from '../support/services.ts';
import { startLatchkey, type LatchkeyProcess } from '../support/processes.ts';
import { call } from '../support/server.ts';
import {
  exchange, grant, loginRequest, poll, registerApp, scan, waitingPollsOnRedis, type AppUser, type WaitingPolls,
} from '../support/qr-clients.ts';

const POLL_TIMEOUT_MS = 20_000;
/** Well under the poll timeout and under the 5 s re-read: only a pub/sub wake-up is this fast. */
const PROMPT_MS = 1_500;

describe('QR login across two nodes (Redis)', { skip: await skipUnless('redis') }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-qr-nodes-'));
  let nodeA: LatchkeyProcess;
  let nodeB: LatchkeyProcess;
  let alice: AppUser;
  let waiting: WaitingPolls & { close(): void };

  before(async () => {
    const prefix = uniquePrefix('qr2');
    waiting = await waitingPollsOnRedis(REDIS_URL, prefix);
    const config = {
      store: REDIS_URL,
      store_prefix: prefix,
      db: `sqlite:${join(dir, 'accounts.db')}`,
      password: { memory_cost: 1024, time_cost: 1 },
      rate_limits: { register: { max: 1000 }, login: { max: 1000 }, qr_create: { max: 1000 }, qr_exchange: { max: 1000 } },
      qr: { poll_timeout_seconds: POLL_TIMEOUT_MS / 1000 },
    };
    // One after the other: both would run the account database's migrations.
    nodeA = await startLatchkey(config);
    nodeB = await startLatchkey(config);
    alice = await registerApp(nodeB, 'alice');
  });
  after(async () => {
    await Promise.all([nodeA?.stop(), nodeB?.stop()]);
    waiting?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('scan and approval on node B wake the browser\'s long-poll on node A at once', async () => {
    const request = await loginRequest(nodeA);

    const waitingForScan = poll(nodeA, request.uuid, request.poll_secret, 'waitScan');
    await waiting.atLeast(request.uuid, 1);
    assert.equal((await scan(nodeB, alice, request.uuid)).status, 200);
    const scannedAt = performance.now();
    const scanned = await waitingForScan;
    assert.deepEqual(scanned.body, { status: 'scanned' });
    assert.ok(scanned.at - scannedAt < PROMPT_MS, `node A answered ${Math.round(scanned.at - scannedAt)} ms after the scan on B`);

    const waitingForAnswer = poll(nodeA, request.uuid, request.poll_secret, 'scanned');
    await waiting.atLeast(request.uuid, 1);
    const granted = await grant(nodeB, alice, request.uuid, true);
    const grantedAt = performance.now();
    assert.deepEqual(granted.body, { status: 'authed' });
    const authed = await waitingForAnswer;
    assert.equal(authed.body.status, 'authed');
    assert.ok(authed.at - grantedAt < PROMPT_MS, `node A answered ${Math.round(authed.at - grantedAt)} ms after the grant on B`);
    assert.ok(!JSON.stringify([scanned.body, authed.body]).includes(alice.uid), 'the poller never sees the scanner uid');

    const login = await exchange(nodeA, authed.body.auth_code, request.uuid, request.poll_secret);
    assert.equal(login.status, 200, JSON.stringify(login.body));
    assert.equal(login.body.uid, alice.uid);
    assert.equal(login.body.device_flag, 1);
    const current = await call(nodeB, 'GET', '/v1/user/current', undefined, login.body.token);
    assert.equal(current.body.session.method, 'qr');
    assert.equal((await exchange(nodeB, authed.body.auth_code, request.uuid, request.poll_secret)).status, 410, 'used, on any node');
  });

  it('polls on both nodes are woken by one change', async () => {
    const request = await loginRequest(nodeB, 2);
    const onA = poll(nodeA, request.uuid, request.poll_secret, 'waitScan');
    const onB = poll(nodeB, request.uuid, request.poll_secret, 'waitScan');
    await waiting.atLeast(request.uuid, 2);
    await scan(nodeA, alice, request.uuid);
    const scannedAt = performance.now();
    for (const answer of await Promise.all([onA, onB])) {
      assert.deepEqual(answer.body, { status: 'scanned' });
      assert.ok(answer.at - scannedAt < PROMPT_MS);
    }
  });

  it('a rejection on node B reaches the poll on node A; no code exists', async () => {
    const request = await loginRequest(nodeA);
    await scan(nodeB, alice, request.uuid);
    const waitingForAnswer = poll(nodeA, request.uuid, request.poll_secret, 'scanned');
    await waiting.atLeast(request.uuid, 1);
    await grant(nodeB, alice, request.uuid, false);
    const answer = await waitingForAnswer;
    assert.deepEqual(answer.body, { status: 'rejected' });
    assert.ok(answer.tookMs < PROMPT_MS + 500);
    const guess = Buffer.alloc(32, 7).toString('base64url');
    assert.equal((await exchange(nodeA, guess, request.uuid, request.poll_secret)).status, 404);
  });

  it('50 simultaneous exchanges spread over both nodes: exactly one session', async () => {
    const request = await loginRequest(nodeA);
    await scan(nodeB, alice, request.uuid);
    await grant(nodeB, alice, request.uuid, true);
    const { body } = await poll(nodeA, request.uuid, request.poll_secret, 'scanned');
    assert.equal(body.status, 'authed');
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => exchange(i % 2 === 0 ? nodeA : nodeB, body.auth_code, request.uuid, request.poll_secret)),
    );
    const statuses = answers.map((answer) => answer.status);
    assert.equal(statuses.filter((s) => s === 200).length, 1, `statuses: ${statuses}`);
    assert.equal(statuses.filter((s) => s === 410).length, 49, `statuses: ${statuses}`);
  });
});
