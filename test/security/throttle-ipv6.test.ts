/**
 * Hole 14 (rate limits): an IPv6 client holds a whole /64, i.e. 2^64 addresses; counting each
 * address on its own gave it 2^64 budgets. Addresses are counted under their network, and an
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack socket reports) as the IPv4 address.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { clientNetwork, RateLimiter } from '../../src/core/guards.ts';
import { LatchkeyError } from '../../src/core/errors.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

describe('clientNetwork: the subject a client address is counted under', () => {
  it('an IPv6 address counts under its /64 by default, whatever its spelling', () => {
    const net = clientNetwork('2001:db8:1:2::1', 64);
    assert.equal(clientNetwork('2001:db8:1:2:ffff:ffff:ffff:ffff', 64), net);
    assert.equal(clientNetwork('2001:0DB8:0001:0002:0:0:0:abcd', 64), net);
    assert.notEqual(clientNetwork('2001:db8:1:3::1', 64), net, 'the next /64 is another client');
  });

  it('the prefix length is configurable, and 128 counts every address on its own', () => {
    assert.equal(clientNetwork('2001:db8:1:2::1', 48), clientNetwork('2001:db8:1:ffff::1', 48));
    assert.notEqual(clientNetwork('2001:db8:1:2::1', 48), clientNetwork('2001:db8:2:2::1', 48));
    assert.notEqual(clientNetwork('2001:db8::1', 128), clientNetwork('2001:db8::2', 128));
    assert.equal(clientNetwork('2001:db8::1', 56), clientNetwork('2001:db8:0:ff::1', 56));
    assert.notEqual(clientNetwork('2001:db8::1', 56), clientNetwork('2001:db8:0:100::1', 56));
  });

  it('an IPv4-mapped IPv6 address is the IPv4 address; IPv4 addresses stay whole', () => {
    assert.equal(clientNetwork('::ffff:192.0.2.7', 64), '192.0.2.7');
    assert.equal(clientNetwork('::ffff:c000:207', 64), '192.0.2.7');
    assert.equal(clientNetwork('192.0.2.7', 64), '192.0.2.7');
    assert.notEqual(clientNetwork('192.0.2.8', 64), '192.0.2.7');
  });

  it('a zone index does not make a new budget, and a subject that is no address is left alone', () => {
    assert.equal(clientNetwork('fe80::1%eth0', 64), clientNetwork('fe80::2', 64));
    assert.equal(clientNetwork('abcDEF_-123', 64), 'abcDEF_-123');
  });
});

describe('per-IP limits count an IPv6 client\'s /64 as one client', () => {
  it('RateLimiter.hit: two addresses of one /64 share one budget; another /64 has its own', async () => {
    const limiter = new RateLimiter(new MemoryKv({ now: () => 0 }), 64);
    const limit = { max: 2, windowSeconds: 60 };
    await limiter.hit('login', '2001:db8:5:6::1', limit);
    await limiter.hit('login', '2001:db8:5:6::2', limit);
    await assert.rejects(limiter.hit('login', '2001:db8:5:6:aaaa::3', limit), (error: unknown) => error instanceof LatchkeyError && error.code === 'rate_limited');
    await limiter.hit('login', '2001:db8:5:7::1', limit);
  });

  const servers: TestServer[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  async function loginFrom(server: TestServer, forwardedFor: string, username: string, password: string): Promise<number> {
    const response = await fetch(`${server.url}/v1/user/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': forwardedFor },
      body: JSON.stringify({ username, password, flag: 1 }),
    });
    await response.arrayBuffer();
    return response.status;
  }

  it('the per-IP login limit: parallel logins from many addresses of one /64 share one budget', async () => {
    const s = await startTestServer({ trust_proxy: '127.0.0.1', rate_limits: { login: { max: 3, window_seconds: 60 } } });
    servers.push(s);
    const statuses = await Promise.all(Array.from({ length: 12 }, (_, i) => loginFrom(s, `2001:db8:7:8::${(i + 1).toString(16)}`, 'nobody', 'a wrong guess')));
    assert.equal(statuses.filter((status) => status === 401).length, 3, JSON.stringify(statuses));
    assert.equal(statuses.filter((status) => status === 429).length, 9);
    assert.equal(await loginFrom(s, '2001:db8:7:9::1', 'nobody', 'a wrong guess'), 401, 'the next /64 has its own budget');
  });

  it('the login throttle: guesses from one /64 lock that /64 out of the account, not the owner elsewhere', async () => {
    const s = await startTestServer({ trust_proxy: '127.0.0.1', login_throttle: { per_account_ip: 3, per_account: 100_000 } });
    servers.push(s);
    const registered = await fetch(`${s.url}/v1/user/register`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'hana', password: 'correct horse' }),
    });
    assert.equal(registered.status, 201);
    const statuses = await Promise.all(Array.from({ length: 12 }, (_, i) => loginFrom(s, `2001:db8:a:b:${i + 1}::1`, 'hana', `guess number ${i}`)));
    assert.equal(statuses.filter((status) => status === 401).length, 3, JSON.stringify(statuses));
    assert.equal(await loginFrom(s, '2001:db8:a:c::1', 'hana', 'correct horse'), 200, 'the owner in another /64 gets in');
  });
});
