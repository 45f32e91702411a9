/**
 * The rate limits and the login throttle in process, on the in-memory store and a clock the test
 * moves: the exact count at which each limit bites, the window each counter lives for, the
 * Retry-After it answers, the delays of an account under attack, and the keys every node of a
 * deployment (and every release of a rolling deploy) must agree on.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { LatchkeyError } from '../../src/core/errors.ts';
import {
  DEFAULT_IPV6_PREFIX, LoginThrottle, RateLimiter, accountSubject, clientNetwork, unknownSubject, type LoginThrottleLimits,
} from '../../src/core/guards.ts';
import type { Kv } from '../../src/ports/kv.ts';

const T0 = 1_800_000_000_000;

function store() {
  const clock = { at: T0, now() { return this.at; } };
  return { clock, kv: new MemoryKv(clock) };
}

async function limited(promise: Promise<unknown>, retryAfter: number): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof LatchkeyError, String(error));
    assert.equal(error.code, 'rate_limited');
    assert.equal(error.retryAfter, retryAfter);
    return true;
  });
}

/** What accountHash names an account by in the store: the first 22 characters of SHA-256, base64url. */
const hashed = (name: string): string => createHash('sha256').update(name).digest('base64url').slice(0, 22);

describe('RateLimiter', () => {
  it('allows exactly max hits per window under rl:<name>:<network>, then answers 429 with the window left', async () => {
    const { clock, kv } = store();
    const limiter = new RateLimiter(kv);
    const limit = { max: 3, windowSeconds: 60 };
    for (let i = 0; i < 3; i += 1) await limiter.hit('login', '192.0.2.1', limit);
    assert.deepEqual(kv.keys(), ['rl:login:192.0.2.1']);
    assert.equal(await kv.pttl('rl:login:192.0.2.1'), 60_000);
    clock.at += 10_500;
    await limited(limiter.hit('login', '192.0.2.1', limit), 50);
    await limiter.hit('register', '192.0.2.1', limit);
    await limiter.hit('login', '192.0.2.2', limit);
    clock.at += 49_500;
    await limiter.hit('login', '192.0.2.1', limit);
  });

  it('counts an IPv6 address under its /64 unless told otherwise, and says so as the requester', async () => {
    const { kv } = store();
    assert.equal(DEFAULT_IPV6_PREFIX, 64);
    assert.equal(new RateLimiter(kv).requester('2001:db8:1:2::5'), '2001:db8:1:2:0:0:0:0/64');
    assert.equal(new RateLimiter(kv, 48).requester('2001:db8:1:2::5'), '2001:db8:1:0:0:0:0:0/48');
    await new RateLimiter(kv, 48).hit('qr', '2001:db8:1:2::5', { max: 1, windowSeconds: 1 });
    assert.deepEqual(kv.keys(), ['rl:qr:2001:db8:1:0:0:0:0:0/48']);
  });

  it('answers Retry-After of at least one second, and the whole window for a counter without a TTL', async () => {
    const { clock, kv } = store();
    const limiter = new RateLimiter(kv);
    const limit = { max: 1, windowSeconds: 60 };
    await limiter.hit('a', 'x', limit);
    clock.at += 59_999;
    await limited(limiter.hit('a', 'x', limit), 1);
    // A counter that lost its TTL (written by hand, or by a store that dropped it): the window is the best guess.
    await kv.set('rl:b:x', '5');
    await limited(limiter.hit('b', 'x', limit), 60);
  });
});

describe('LoginThrottle', () => {
  const limits: LoginThrottleLimits = { perAccountIp: 3, perAccount: 4, windowSeconds: 600, lockSeconds: 900 };

  function throttle(over: Partial<LoginThrottleLimits> = {}) {
    const s = store();
    const delays: number[] = [];
    const t = new LoginThrottle(s.kv, { ...limits, ...over }, async (ms) => { delays.push(ms); });
    return { ...s, delays, t };
  }

  it('locks an address out of an account after perAccountIp attempts, for lockSeconds, under lf:{account}:<network>', async () => {
    const { clock, kv, t } = throttle();
    const alice = accountSubject('alice');
    for (let i = 0; i < 3; i += 1) await t.reserve(alice, '192.0.2.1');
    const pair = `lf:{${hashed('uid:alice')}}:192.0.2.1`;
    assert.equal(await kv.get(pair), '3');
    assert.equal(await kv.pttl(pair), 900_000);
    assert.equal(await kv.pttl(`lf:{${hashed('uid:alice')}}`), 600_000);
    clock.at += 100_000;
    await limited(t.reserve(alice, '192.0.2.1'), 800);
    // The owner elsewhere, and the attacker on another account, are not locked.
    await t.reserve(alice, '192.0.2.2');
    await t.reserve(accountSubject('bob'), '192.0.2.1');
    clock.at += 800_000;
    await t.reserve(alice, '192.0.2.1');
  });

  it('answers a lock without a TTL with the whole lock time', async () => {
    const { kv, t } = throttle();
    await kv.set(`lf:{${hashed('uid:alice')}}:192.0.2.1`, '9');
    await limited(t.reserve(accountSubject('alice'), '192.0.2.1'), 900);
  });

  it('counts the pair per /64 unless the limits say otherwise', async () => {
    const defaults = throttle();
    await defaults.t.reserve(accountSubject('a'), '2001:db8:1:2::1');
    assert.ok(defaults.kv.keys().includes(`lf:{${hashed('uid:a')}}:2001:db8:1:2:0:0:0:0/64`), defaults.kv.keys().join());
    const wide = throttle({ ipv6Prefix: 32 });
    await wide.t.reserve(accountSubject('a'), '2001:db8:1:2::1');
    assert.ok(wide.kv.keys().includes(`lf:{${hashed('uid:a')}}:2001:db8:0:0:0:0:0:0/32`), wide.kv.keys().join());
  });

  it('delays every attempt past perAccount on the account, doubling from 250 ms up to 4 s', async () => {
    const { t, delays } = throttle({ perAccountIp: 1000 });
    const alice = accountSubject('alice');
    for (let i = 0; i < 12; i += 1) await t.reserve(alice, `192.0.2.${i}`);
    assert.deepEqual(delays, [250, 500, 1000, 2000, 4000, 4000, 4000, 4000]);
  });

  it('really waits when no delay is injected', async () => {
    const t = new LoginThrottle(new MemoryKv(), { ...limits, perAccount: 0 });
    const started = performance.now();
    await t.reserve(accountSubject('alice'), '192.0.2.1');
    const took = performance.now() - started;
    assert.ok(took >= 240 && took < 2_000, `the first attempt over the account's count waited ${took} ms, not 250`);
  });

  it('caps the exponent, so a long attack cannot overflow the delay', async () => {
    const { kv, t, delays } = throttle({ perAccountIp: 1000 });
    await kv.set(`lf:{${hashed('uid:alice')}}`, '2000', { ttlMs: 600_000 });
    await t.reserve(accountSubject('alice'), '192.0.2.1');
    assert.deepEqual(delays, [4000]);
  });

  it('a right password clears the address and gives the account its attempt back, keeping the window', async () => {
    const { clock, kv, t } = throttle();
    const alice = accountSubject('alice');
    await t.reserve(alice, '192.0.2.1');
    await t.reserve(alice, '192.0.2.1');
    await t.reserve(alice, '192.0.2.9');
    clock.at += 1_000;
    await t.succeeded(alice, '192.0.2.1');
    const account = `lf:{${hashed('uid:alice')}}`;
    assert.equal(await kv.get(`${account}:192.0.2.1`), null);
    assert.equal(await kv.get(`${account}:192.0.2.9`), '1');
    assert.equal(await kv.get(account), '2');
    assert.equal(await kv.pttl(account), 599_000);
  });

  it('a released attempt gives one back to the address and to the account, and never goes below zero', async () => {
    const { kv, t } = throttle();
    const alice = accountSubject('alice');
    await t.reserve(alice, '192.0.2.1');
    await t.reserve(alice, '192.0.2.1');
    await t.released(alice, '192.0.2.1');
    const account = `lf:{${hashed('uid:alice')}}`;
    assert.equal(await kv.get(`${account}:192.0.2.1`), '1');
    assert.equal(await kv.get(account), '1');
    await t.released(alice, '192.0.2.1');
    await t.released(alice, '192.0.2.1');
    assert.equal(await kv.get(`${account}:192.0.2.1`), '0');
    assert.equal(await kv.get(account), '0');
    // Nothing to give back: no counter is created.
    await t.released(accountSubject('bob'), '192.0.2.1');
    assert.equal(await kv.get(`lf:{${hashed('uid:bob')}}`), null);
  });

  it('gives up giving back after three lost races, leaving one attempt too many (the safe side)', async () => {
    const { kv, t } = throttle();
    await t.reserve(accountSubject('alice'), '192.0.2.1');
    let tries = 0;
    const losing = new Proxy(kv, {
      get(target, prop) {
        if (prop === 'compareAndSet') return async () => { tries += 1; return false; };
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as Kv;
    await new LoginThrottle(losing, limits, async () => {}).released(accountSubject('alice'), '192.0.2.1');
    assert.equal(tries, 6, 'three tries for the address, three for the account');
    assert.equal(await kv.get(`lf:{${hashed('uid:alice')}}`), '1');
  });

  it('names an unknown identifier by its NFKC lowercase form, apart from any uid', async () => {
    const { kv, t } = throttle();
    await t.reserve(unknownSubject('ＡＬＩＣＥ'), '192.0.2.1');
    assert.deepEqual(unknownSubject('ＡＬＩＣＥ'), { unknown: 'alice' });
    assert.deepEqual(accountSubject('u1'), { uid: 'u1' });
    assert.ok(kv.keys().includes(`lf:{${hashed('name:alice')}}`), kv.keys().join());
    await t.reserve(accountSubject('alice'), '192.0.2.1');
    assert.ok(kv.keys().includes(`lf:{${hashed('uid:alice')}}`));
    assert.notEqual(hashed('name:alice'), hashed('uid:alice'));
  });
});

describe('clientNetwork', () => {
  it('writes the masked network in full, with its prefix', () => {
    assert.equal(clientNetwork('2001:db8:aaaa:bbbb:cccc::1', 64), '2001:db8:aaaa:bbbb:0:0:0:0/64');
    assert.equal(clientNetwork('2001:db8:aaaa:bbbb:cccc::1', 56), '2001:db8:aaaa:bb00:0:0:0:0/56');
    assert.equal(clientNetwork('2001:db8:aaaa:bbbb:cccc::1', 0), '0:0:0:0:0:0:0:0/0');
    assert.equal(clientNetwork('2001:db8::ffff:1', 128), '2001:db8:0:0:0:0:ffff:1/128');
    assert.equal(clientNetwork('::1', 128), '0:0:0:0:0:0:0:1/128');
    assert.equal(clientNetwork('1::', 128), '1:0:0:0:0:0:0:0/128');
    assert.equal(clientNetwork('2001:db8:1:2:3:4:5:6', 128), '2001:db8:1:2:3:4:5:6/128', 'an address written without ::');
  });

  it('reads a dotted tail and an IPv4-mapped address, and only a mapped one becomes IPv4', () => {
    assert.equal(clientNetwork('64:ff9b::192.0.2.33', 128), '64:ff9b:0:0:0:0:c000:221/128');
    assert.equal(clientNetwork('::ffff:10.1.2.3', 64), '10.1.2.3');
    assert.equal(clientNetwork('::fffe:10.1.2.3', 128), '0:0:0:0:0:fffe:a01:203/128');
    assert.equal(clientNetwork('1::ffff:10.1.2.3', 128), '1:0:0:0:0:ffff:a01:203/128');
    assert.equal(clientNetwork('fe80::1%eth0', 128), 'fe80:0:0:0:0:0:0:1/128');
    // The zone goes before the dotted tail is read: its last byte is 4, not "4%eth0".
    assert.equal(clientNetwork('64:ff9b::1.2.3.4%eth0', 128), '64:ff9b:0:0:0:0:102:304/128');
    assert.equal(clientNetwork('::ffff:1.2.3.4%eth0', 64), '1.2.3.4');
  });
});
