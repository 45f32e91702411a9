import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type Answer, type TestServer } from '../support/server.ts';

/** A client that claims an address through X-Forwarded-For; only believed with trust_proxy. */
async function from(server: TestServer, ip: string, path: string, body: unknown, token?: string): Promise<Answer & { retryAfter: string | null }> {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-forwarded-for': ip };
  if (token !== undefined) headers.token = token;
  const response = await fetch(server.url + path, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: response.status, body: await response.json(), headers: response.headers, retryAfter: response.headers.get('retry-after') };
}

const servers: TestServer[] = [];
const dirs: string[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function server(overrides: Record<string, unknown>): Promise<TestServer> {
  const started = await startTestServer({ trust_proxy: '127.0.0.1', ...overrides });
  servers.push(started);
  return started;
}

describe('rate limits and login throttling', () => {
  it('limits logins per client address, with Retry-After, and another address is unaffected', async () => {
    const s = await server({ rate_limits: { login: { max: 3, window_seconds: 60 } } });
    for (let i = 0; i < 3; i++) {
      assert.equal((await from(s, '10.0.0.1', '/v1/user/login', { username: 'nobody', password: 'x', flag: 1 })).status, 401);
    }
    const limited = await from(s, '10.0.0.1', '/v1/user/login', { username: 'nobody', password: 'x', flag: 1 });
    assert.equal(limited.status, 429);
    assert.equal(limited.body.code, 'rate_limited');
    assert.equal(limited.body.status, 429);
    assert.ok(Number(limited.retryAfter) >= 1 && Number(limited.retryAfter) <= 60, `Retry-After ${limited.retryAfter}`);
    assert.equal((await from(s, '10.0.0.2', '/v1/user/login', { username: 'nobody', password: 'x', flag: 1 })).status, 401);
  });

  it('limits registrations per client address', async () => {
    const s = await server({ rate_limits: { register: { max: 2, window_seconds: 3600 } } });
    assert.equal((await from(s, '10.0.1.1', '/v1/user/register', { username: 'reg1', password: 'correct horse' })).status, 201);
    assert.equal((await from(s, '10.0.1.1', '/v1/user/register', { username: 'reg2', password: 'correct horse' })).status, 201);
    const limited = await from(s, '10.0.1.1', '/v1/user/register', { username: 'reg3', password: 'correct horse' });
    assert.equal(limited.status, 429);
    assert.ok(limited.retryAfter !== null);
  });

  it('locks one address out of an account after repeated failures, but not the owner at another address', async () => {
    const s = await server({ login_throttle: { per_account_ip: 3, per_account: 1000, lock_seconds: 600 } });
    await from(s, '10.0.2.9', '/v1/user/register', { username: 'victim', password: 'correct horse' });
    for (let i = 0; i < 3; i++) {
      assert.equal((await from(s, '10.0.2.66', '/v1/user/login', { username: 'victim', password: `guess ${i}`, flag: 1 })).status, 401);
    }
    const locked = await from(s, '10.0.2.66', '/v1/user/login', { username: 'victim', password: 'correct horse', flag: 1 });
    assert.equal(locked.status, 429, 'even the right password is refused from the guessing address');
    assert.ok(Number(locked.retryAfter) > 500);
    const owner = await from(s, '10.0.2.9', '/v1/user/login', { username: 'victim', password: 'correct horse', flag: 1 });
    assert.equal(owner.status, 200, 'the owner at another address is not locked out');
  });

  it('slows every attempt on an account attacked from many addresses, without locking the owner out', async () => {
    const s = await server({ login_throttle: { per_account_ip: 100, per_account: 3, window_seconds: 600 } });
    await from(s, '10.0.3.9', '/v1/user/register', { username: 'target', password: 'correct horse' });
    for (let i = 0; i < 4; i++) {
      await from(s, `10.0.3.${100 + i}`, '/v1/user/login', { username: 'target', password: `guess ${i}`, flag: 1 });
    }
    const started = performance.now();
    const owner = await from(s, '10.0.3.9', '/v1/user/login', { username: 'target', password: 'correct horse', flag: 1 });
    const took = performance.now() - started;
    assert.equal(owner.status, 200, 'the owner still gets in');
    assert.ok(took >= 400, `the attempt was slowed (${took.toFixed(0)} ms)`);
  });

  it('shares limits across nodes through the store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-guards-'));
    dirs.push(dir);
    const shared = { store: `sqlite:${join(dir, 'kv.db')}`, db: `sqlite:${join(dir, 'accounts.db')}`, rate_limits: { login: { max: 4, window_seconds: 60 } } };
    const a = await server(shared);
    const b = await server(shared);
    for (const node of [a, b, a, b]) {
      assert.equal((await from(node, '10.0.4.1', '/v1/user/login', { username: 'nobody', password: 'x', flag: 1 })).status, 401);
    }
    assert.equal((await from(a, '10.0.4.1', '/v1/user/login', { username: 'nobody', password: 'x', flag: 1 })).status, 429);
    assert.equal((await from(b, '10.0.4.1', '/v1/user/login', { username: 'nobody', password: 'x', flag: 1 })).status, 429);
  });

  it('records register, login ok and fail, logout and revoke in the audit trail, with address and agent', async () => {
    const s = await server({});
    const reg = await from(s, '10.0.5.1', '/v1/user/register', { username: 'audited', password: 'correct horse', flag: 1 });
    await from(s, '10.0.5.1', '/v1/user/login', { username: 'audited', password: 'wrong one', flag: 1 });
    const second = await from(s, '10.0.5.1', '/v1/user/login', { username: 'audited', password: 'correct horse', flag: 2 });
    await from(s, '10.0.5.1', `/v1/user/sessions/revoke_others`, {}, reg.body.token);
    await from(s, '10.0.5.1', '/v1/user/quit', {}, reg.body.token);
    const events = await s.runtime.accounts.queryAudit({ uid: reg.body.uid, limit: 50 });
    const seen = events.map((e) => `${e.type}:${e.result}`);
    for (const expected of ['register:ok', 'login:ok', 'login:fail', 'revoke:ok', 'logout:ok']) {
      assert.ok(seen.includes(expected), `${expected} in ${seen.join(', ')}`);
    }
    assert.ok(events.every((e) => e.ip === '10.0.5.1'));
    const text = JSON.stringify(events);
    assert.ok(!text.includes(reg.body.token) && !text.includes(second.body.token) && !text.includes('correct horse'), 'no secrets in the audit trail');
  });
});
