/**
 * Hole 6: a QR approval must not outlive the session that gave it. An auth code approved by an app
 * session that was ended afterwards (logout, revoke, password change signing out the others,
 * password reset, ban) must not buy a fresh session, not even when the ending runs at the same
 * time as the exchange.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { call, startTestServer, testDefaults, type TestServer } from '../support/server.ts';
import { exchange, grant, loginRequest, poll, registerApp, scan, type AppUser, type BrowserRequest } from '../support/qr-clients.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setAccountStatus } from '../../src/core/accounts.ts';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import type { SetOptions } from '../../src/ports/kv.ts';
import { parseConfig } from '../../src/config/config.ts';
import { startServer, type Server } from '../../src/main.ts';
import { createLogger } from '../../src/logger.ts';

const generousLimits = { ...testDefaults.rate_limits, qr_create: { max: 100_000 }, qr_exchange: { max: 100_000 } };
let names = 0;
const uniqueName = (label: string): string => `${label}${(names += 1)}`;

interface Approved {
  readonly request: BrowserRequest;
  readonly code: string;
}

async function approve(server: Server, app: AppUser): Promise<Approved> {
  const request = await loginRequest(server);
  assert.equal((await scan(server, app, request.uuid)).status, 200);
  assert.equal((await grant(server, app, request.uuid, true)).status, 200);
  const polled = await poll(server, request.uuid, request.poll_secret, 'scanned');
  assert.equal(polled.body.status, 'authed');
  return { request, code: polled.body.auth_code as string };
}

const exchangeApproved = (server: Server, { request, code }: Approved) => exchange(server, code, request.uuid, request.poll_secret);

/** Sessions of the account that a QR exchange made: there must be none after a refused exchange. */
async function qrSessions(server: Server, uid: string): Promise<number> {
  return (await server.runtime.sessions.list(uid)).filter((session) => session.method === 'qr').length;
}

/** What POST /v1/user/pwdforget does once the code is proven: new password, every session ended. */
async function resetPassword(server: Server, uid: string): Promise<void> {
  const user = await server.runtime.accounts.findByUid(uid);
  assert.ok(user !== null);
  const next = await server.runtime.hasher.hash('a brand new password');
  assert.ok(await server.runtime.accounts.updatePasswordHash(uid, user.passwordHash, next, Date.now()));
  await server.runtime.sessions.revokeAll(uid, 'password');
}

async function webLogin(server: Server, username: string): Promise<{ token: string; sid: string }> {
  const web = await call(server, 'POST', '/v1/user/login', { username, password: 'correct horse', flag: 1 });
  assert.equal(web.status, 200, JSON.stringify(web.body));
  return { token: web.body.token, sid: web.body.sid };
}

function assertExpired(answer: { status: number; body: { code?: string } }, what: string): void {
  assert.equal(answer.status, 410, `${what}: ${JSON.stringify(answer.body)}`);
  assert.equal(answer.body.code, 'expired', what);
}

describe('a QR approval dies with the session that gave it', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ rate_limits: generousLimits, qr: { poll_timeout_seconds: 4 } });
  });
  after(async () => {
    await server.stop();
  });

  it('the approving app logs out: the exchange answers 410 and makes no session', async () => {
    const name = uniqueName('quitter');
    const app = await registerApp(server, name);
    const approved = await approve(server, app);
    assert.equal((await call(server, 'POST', '/v1/user/quit', undefined, app.token)).status, 200);
    assertExpired(await exchangeApproved(server, approved), 'after logout');
    assert.equal(await qrSessions(server, app.uid), 0);
  });

  it('the approving app session is revoked from another device: 410, no session', async () => {
    const name = uniqueName('revoked');
    const app = await registerApp(server, name);
    const web = await webLogin(server, name);
    const approved = await approve(server, app);
    const appSid = (await call(server, 'GET', '/v1/user/current', undefined, app.token)).body.session.sid as string;
    assert.equal((await call(server, 'DELETE', `/v1/user/sessions/${appSid}`, undefined, web.token)).status, 200);
    assertExpired(await exchangeApproved(server, approved), 'after revoke');
    assert.equal(await qrSessions(server, app.uid), 0);
  });

  it('a password change that signs out the other sessions (the approving app among them): 410, no session', async () => {
    const name = uniqueName('changer');
    const app = await registerApp(server, name);
    const web = await webLogin(server, name);
    const approved = await approve(server, app);
    const changed = await call(server, 'PUT', '/v1/user/updatepassword', {
      password: 'correct horse', new_password: 'another good password', revoke_other_sessions: true,
    }, web.token);
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    assertExpired(await exchangeApproved(server, approved), 'after password change');
    assert.equal(await qrSessions(server, app.uid), 0);
  });

  it('a password reset: 410, no session', async () => {
    const app = await registerApp(server, uniqueName('resetter'));
    const approved = await approve(server, app);
    await resetPassword(server, app.uid);
    assertExpired(await exchangeApproved(server, approved), 'after password reset');
    assert.equal(await qrSessions(server, app.uid), 0);
  });

  it('a ban: 403 account_disabled, as for any login of a banned account, and no session', async () => {
    const app = await registerApp(server, uniqueName('banned'));
    const approved = await approve(server, app);
    await setAccountStatus(server.runtime, app.uid, 'banned');
    const answer = await exchangeApproved(server, approved);
    assert.equal(answer.status, 403, JSON.stringify(answer.body));
    assert.equal(answer.body.code, 'account_disabled');
    assert.equal(await qrSessions(server, app.uid), 0);
  });

  it('the approver still signed in: the exchange works (the check does not refuse honest logins)', async () => {
    const app = await registerApp(server, uniqueName('honest'));
    const answer = await exchangeApproved(server, await approve(server, app));
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(await qrSessions(server, app.uid), 1);
  });

  it('password resets racing the exchanges (20 accounts at once): no QR session survives its approver', async () => {
    const apps = await Promise.all(Array.from({ length: 20 }, () => registerApp(server, uniqueName('racer'))));
    const approvals = await Promise.all(apps.map((app) => approve(server, app)));
    const answers = await Promise.all(apps.map(async (app, i) => {
      const approved = approvals[i];
      assert.ok(approved !== undefined);
      const [answer] = await Promise.all([exchangeApproved(server, approved), resetPassword(server, app.uid)]);
      return answer;
    }));
    for (const [i, app] of apps.entries()) {
      const answer = answers[i];
      assert.ok(answer !== undefined);
      assert.ok([200, 410].includes(answer.status), `answer ${answer.status}: ${JSON.stringify(answer.body)}`);
      assert.equal(await qrSessions(server, app.uid), 0, `account ${i} kept a QR session after its reset (exchange said ${answer.status})`);
      if (answer.status === 200) {
        assert.equal((await call(server, 'GET', '/v1/user/current', undefined, answer.body.token)).status, 401);
      }
    }
  });
});

/**
 * The narrowest interleaving, made to happen: the exchange checked the approval (password as
 * approved, approver alive), then a reset changed the password and its sweep read the session
 * index before the new QR session joined it, and ends the approver only after the exchange is
 * done. Only a check after the new session is indexed can see the reset.
 */
class SweepGatedKv extends MemoryKv {
  /** Armed by the test: the account, its approving sid, and the reset to start. */
  armed: { uid: string; approverSid: string; startReset: () => void } | null = null;
  #snapshotTaken: (() => void) | null = null;
  #releaseSweep: Promise<void> | null = null;
  #approverKey = '';
  release: () => void = () => {};

  override async set(key: string, value: string, options?: SetOptions): Promise<boolean> {
    const armed = this.armed;
    if (armed !== null && options?.nx === true && key.startsWith('sess:') && key !== `sess:${armed.approverSid}`) {
      this.armed = null;
      this.#approverKey = `sess:${armed.approverSid}`;
      // The exchange is about to create its session: run the reset up to its index snapshot first.
      const snapshot = new Promise<void>((resolve) => { this.#snapshotTaken = resolve; });
      this.#releaseSweep = new Promise<void>((resolve) => { this.release = resolve; });
      armed.startReset();
      await snapshot;
    }
    return super.set(key, value, options);
  }

  override async hgetall(key: string): Promise<Record<string, string>> {
    const result = await super.hgetall(key);
    const taken = this.#snapshotTaken;
    if (taken !== null && key.endsWith(':sessions')) {
      this.#snapshotTaken = null;
      taken();
    }
    return result;
  }

  override async getdel(key: string): Promise<string | null> {
    // The sweep reaches the approver only once the exchange has answered.
    if (this.#releaseSweep !== null && key === this.#approverKey) await this.#releaseSweep;
    return super.getdel(key);
  }
}

describe('a reset whose sweep straddles the exchange', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-qr-sweep-'));
  const kv = new SweepGatedKv();
  let server: Server;
  before(async () => {
    const config = parseConfig({ ...testDefaults, rate_limits: generousLimits, data_dir: dataDir, qr: { poll_timeout_seconds: 4 } });
    server = await startServer(config, createLogger(config.logLevel), { kv });
  });
  after(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('the QR session issued between the sweep\'s snapshot and the approver\'s end is ended: 410', async () => {
    const app = await registerApp(server, 'straddled');
    const approved = await approve(server, app);
    const approverSid = (await call(server, 'GET', '/v1/user/current', undefined, app.token)).body.session.sid as string;
    let resetDone: Promise<void> = Promise.resolve();
    kv.armed = { uid: app.uid, approverSid, startReset: () => { resetDone = resetPassword(server, app.uid); } };
    const answer = await exchangeApproved(server, approved);
    kv.release();
    await resetDone;
    assertExpired(answer, 'exchange straddled by a reset');
    assert.equal(await qrSessions(server, app.uid), 0);
  });
});
