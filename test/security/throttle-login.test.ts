/**
 * Hole 3: the login throttle must be raised before the password is checked, and count the account,
 * not the spelling typed. Parallel guesses from one address are fired with Promise.all.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { startTestServer, type Answer, type TestServer } from '../support/server.ts';

const PASSWORD = 'correct horse';

/** A request from `ip` through the trusted proxy (X-Forwarded-For). */
async function from(server: TestServer, ip: string, path: string, body: unknown): Promise<Answer> {
  const response = await fetch(server.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json(), headers: response.headers };
}

const login = (server: TestServer, ip: string, username: string, password: string) =>
  from(server, ip, '/v1/user/login', { username, password, flag: 1 });

const servers: TestServer[] = [];
async function server(loginThrottle: Record<string, number>): Promise<TestServer> {
  const started = await startTestServer({ trust_proxy: '127.0.0.1', login_throttle: loginThrottle });
  servers.push(started);
  return started;
}
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

function tally(answers: readonly Answer[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const answer of answers) counts[answer.status] = (counts[answer.status] ?? 0) + 1;
  return counts;
}

describe('the login throttle is reserved before the password is checked', () => {
  it('40 parallel wrong passwords from one address: at most 5 are checked, the rest answer 429', async () => {
    const s = await server({ per_account_ip: 5, per_account: 100_000 });
    assert.equal((await from(s, '10.1.0.9', '/v1/user/register', { username: 'alice', password: PASSWORD })).status, 201);
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => login(s, '10.1.0.66', 'alice', `guess number ${i}`)));
    const counts = tally(answers);
    assert.ok((counts[401] ?? 0) <= 5, `wrong passwords checked: ${JSON.stringify(counts)}`);
    assert.ok((counts[429] ?? 0) >= 35, `refused before checking: ${JSON.stringify(counts)}`);
    for (const refused of answers.filter((a) => a.status === 429)) {
      assert.equal(refused.body.code, 'rate_limited');
      assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    }
    assert.equal((await login(s, '10.1.0.66', 'alice', PASSWORD)).status, 429, 'the guessing address stays locked');
    assert.equal((await login(s, '10.1.0.9', 'alice', PASSWORD)).status, 200, 'the owner at another address gets in');
  });

  it('an unknown username is throttled the same way (no difference tells it apart)', async () => {
    const s = await server({ per_account_ip: 5, per_account: 100_000 });
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => login(s, '10.1.1.66', 'nobody', `guess number ${i}`)));
    const counts = tally(answers);
    assert.ok((counts[401] ?? 0) <= 5 && (counts[429] ?? 0) >= 35, JSON.stringify(counts));
    // The case typed does not make a fresh budget for an unknown name either.
    assert.equal((await login(s, '10.1.1.66', 'NoBody', 'another guess')).status, 429);
  });

  it('username, email and zone-phone of one account share one budget', async () => {
    const s = await server({ per_account_ip: 3, per_account: 100_000 });
    const registered = await from(s, '10.1.2.9', '/v1/user/register', {
      username: 'bob', password: PASSWORD, email: 'bob@example.test', zone: '86', phone: '13800000001',
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    for (const spelling of ['bob', 'bob@example.test', '86-13800000001']) {
      assert.equal((await login(s, '10.1.2.66', spelling, 'a wrong guess')).status, 401, spelling);
    }
    for (const spelling of ['bob', 'BOB@example.test', '86-13800000001']) {
      assert.equal((await login(s, '10.1.2.66', spelling, 'a wrong guess')).status, 429, `${spelling} is out of budget too`);
    }
    assert.equal((await login(s, '10.1.2.9', 'bob@example.test', PASSWORD)).status, 200, 'the owner at another address gets in');
  });

  it('a right password clears the address\'s failures, so the owner is not locked by a typo or two', async () => {
    const s = await server({ per_account_ip: 3, per_account: 100_000 });
    await from(s, '10.1.3.9', '/v1/user/register', { username: 'carol', password: PASSWORD });
    for (let round = 0; round < 3; round += 1) {
      assert.equal((await login(s, '10.1.3.9', 'carol', 'a typo here')).status, 401);
      assert.equal((await login(s, '10.1.3.9', 'carol', 'a typo there')).status, 401);
      assert.equal((await login(s, '10.1.3.9', 'carol', PASSWORD)).status, 200);
    }
  });

  it('right passwords give their reservation back: an owner who logs in often is never slowed', async () => {
    const s = await server({ per_account_ip: 2, per_account: 2 });
    await from(s, '10.1.5.9', '/v1/user/register', { username: 'emma', password: PASSWORD });
    for (let i = 0; i < 6; i += 1) assert.equal((await login(s, `10.1.5.${10 + (i % 2)}`, 'emma', PASSWORD)).status, 200);
    const started = performance.now();
    assert.equal((await login(s, '10.1.5.12', 'emma', PASSWORD)).status, 200);
    // Had the six successes stayed counted, this attempt would wait 4 s.
    assert.ok(performance.now() - started < 1500, 'no account-wide delay');
  });

  it('parallel guesses from many addresses are each slowed by the account-wide count', async () => {
    const s = await server({ per_account_ip: 100, per_account: 3 });
    await from(s, '10.1.4.9', '/v1/user/register', { username: 'dave', password: PASSWORD });
    const timed = async (i: number): Promise<number> => {
      const started = performance.now();
      assert.equal((await login(s, `10.1.4.${100 + i}`, 'dave', `guess number ${i}`)).status, 401);
      return performance.now() - started;
    };
    const times = await Promise.all(Array.from({ length: 6 }, (_, i) => timed(i)));
    // Attempts 5 and 6 come after 4 and 5 reservations: 250 ms and 500 ms of delay.
    assert.ok(Math.max(...times) >= 450, `slowest attempt took ${Math.max(...times).toFixed(0)} ms`);
  });
});
