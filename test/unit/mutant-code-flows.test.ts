/**
 * The one-time-code flows of src/flows/code/ (send, code login, password reset, address
 * verification, the resend cooldown and the answer's timing), called in process on the real
 * account store and session service, with a hand-driven clock and the sender, audit trail, log and
 * delay watched: written to kill the Stryker mutants of those files fast, where the HTTP tests
 * (test/security/codes-*.test.ts, test/e2e/codes.e2e.test.ts) are slow or do not look.
 */
import { NO_EVENTS } from '../../src/ports/events.ts';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { after, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/config.ts';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { openAccountStore } from '../../src/adapters/db/open.ts';
import { destinationId, type Destination } from '../../src/core/destinations.ts';
import { LatchkeyError } from '../../src/core/errors.ts';
import { RateLimiter } from '../../src/core/guards.ts';
import { createPasswordHasher } from '../../src/runtime/password-hasher.ts';
import { SessionService } from '../../src/core/sessions/service.ts';
import { UniqueViolation, type AccountRepo, type User } from '../../src/ports/accounts.ts';
import { systemClock, type Clock } from '../../src/ports/clock.ts';
import { SenderError, type CodeChannel, type CodeMessage, type CodePurpose } from '../../src/ports/sender.ts';
import type { AuditRecord, AuditTrail } from '../../src/ops/audit.ts';
import { createMetrics } from '../../src/ops/metrics.ts';
import { CodeStore } from '../../src/flows/code/code-store.ts';
import { ResendCooldown } from '../../src/flows/code/resend-cooldown.ts';
import { SendTiming } from '../../src/flows/code/send-timing.ts';
import { consumeCode } from '../../src/flows/code/consume-code.ts';
import { sendCode } from '../../src/flows/code/send-code.ts';
import { codeLogin, releaseClaim } from '../../src/flows/code/code-login.ts';
import { resetPassword } from '../../src/flows/code/password-reset.ts';
import { verifyAddress } from '../../src/flows/code/verify-address.ts';
import { addressOf, type CodeFlowDeps } from '../../src/flows/code/deps.ts';
import { TellingRandom } from '../support/codes.ts';

const context = { ip: '198.51.100.7', userAgent: 'test' };
const login = { ...context, flag: 1 as const, device: { device_id: 'd', device_name: 'D', device_model: 'm' } };
const email = (to: string): Destination => ({ channel: 'email', to });
const sms = (to: string): Destination => ({ channel: 'sms', to });
const PASSWORD = 'a long enough new password';
const config = parseConfig({ data_dir: tmpdir(), log_level: 'silent', password: { memory_cost: 1024, time_cost: 1 } });
// One hasher (a worker pool) for the file: each world's own would cost more than its tests.
const hasher = createPasswordHasher(config.password);

class ManualClock implements Clock {
  #now = Date.UTC(2026, 0, 1);
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
}


interface Options {
  registerByEmail?: boolean;
  registerBySms?: boolean;
  answerMs?: number;
  channels?: readonly CodeChannel[];
  /** Replaces the sender's delivery (which otherwise succeeds at once). */
  deliver?: (message: CodeMessage) => Promise<void>;
  limits?: Partial<Record<'sendPerIp' | 'sendPerDestination' | 'sendPerDestinationAll', number>>;
  accounts?: (real: AccountRepo) => AccountRepo;
}

/** The real account store with some methods replaced (its private fields need the real receiver). */
function overriding(real: AccountRepo, methods: Partial<AccountRepo>): AccountRepo {
  return new Proxy(real, {
    get(target, prop) {
      const replaced = (methods as Record<PropertyKey, unknown>)[prop];
      if (replaced !== undefined) return replaced;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

const stores: Array<() => Promise<void>> = [];
after(async () => {
  await Promise.all(stores.map((close) => close()));
  await hasher.close();
});

async function world(options: Options = {}) {
  const clock = new ManualClock();
  const random = new TellingRandom();
  const kv = new MemoryKv(clock);
  const store = await openAccountStore('sqlite::memory:');
  stores.push(store.close);
  const metrics = createMetrics();
  const realAccounts = store.repo;
  const accounts = options.accounts?.(realAccounts) ?? realAccounts;
  const ended: string[] = [];
  const sessions = new SessionService({
    kv, clock, random, policies: config.devicePolicies, ttlMs: config.sessionTtlSeconds * 1000,
    accountStatus: async (uid) => (await realAccounts.findByUid(uid))?.status ?? null,
    onEnded: async (_session, reason) => { ended.push(reason); },
  });
  const audit: AuditRecord[] = [];
  const warnings: Array<{ object: Record<string, unknown>; message: string }> = [];
  const delays: number[] = [];
  const sent: CodeMessage[] = [];
  const limit = (max = 1000) => ({ max, windowSeconds: 3600 });
  const deps: CodeFlowDeps = {
    accounts,
    events: NO_EVENTS,
    sessions,
    hasher,
    sender: {
      channels: options.channels ?? ['email', 'sms'],
      send: async (message) => {
        sent.push(message);
        await options.deliver?.(message);
      },
      close: async () => {},
    },
    codes: new CodeStore(kv, clock, random),
    cooldown: new ResendCooldown(kv, random),
    // A wait ends after whatever already-settled work (a delivery that ended) has run, as a timer would.
    timing: new SendTiming(clock, options.answerMs ?? 0, async (ms) => {
      delays.push(ms);
      await new Promise((resolve) => setImmediate(resolve));
    }),
    limiter: new RateLimiter(kv),
    audit: { record: async (event: AuditRecord) => { audit.push(event); } } as unknown as AuditTrail,
    metrics,
    clock,
    random,
    log: { info: () => {}, warn: (object, message) => { warnings.push({ object, message }); } },
    secondStep: { challenge: async () => null },
    settings: {
      registerByEmail: options.registerByEmail ?? false,
      registerBySms: options.registerBySms ?? false,
      sendPerIp: limit(options.limits?.sendPerIp),
      sendPerDestination: limit(options.limits?.sendPerDestination),
      sendPerDestinationAll: limit(options.limits?.sendPerDestinationAll),
    },
  };
  let users = 0;
  const user = async (fields: Partial<User> & { emailVerified?: boolean; phoneVerified?: boolean } = {}): Promise<User> => {
    users += 1;
    return realAccounts.createUser({
      uid: `uid${users}`,
      username: `user${users}`,
      name: `user${users}`,
      email: null,
      passwordHash: null,
      ...fields,
    }, clock.now());
  };
  const counter = async (name: 'codesSent' | 'codeDeliveryFailed' | 'logins', labels: Record<string, string>): Promise<number> => {
    const values = (await metrics[name].get()).values;
    return values.find((v) => Object.entries(labels).every(([k, value]) => (v.labels as Record<string, unknown>)[k] === value))?.value ?? 0;
  };
  const send = (purpose: CodePurpose, destination: Destination, ip = context.ip) => sendCode(deps, purpose, destination, { ...context, ip });
  const runtime = { accounts: realAccounts, sessions, hasher };
  return { deps, runtime, clock, random, kv, ended, audit, warnings, delays, sent, user, counter, send, lastCode: () => random.codes.at(-1) ?? '' };
}

const rejectsWith = (promise: Promise<unknown>, code: string, message?: string | RegExp, details?: Record<string, unknown>) =>
  assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof LatchkeyError, String(error));
    assert.equal(error.code, code, error.message);
    if (typeof message === 'string') assert.equal(error.message, message);
    if (message instanceof RegExp) assert.match(error.message, message);
    if (details !== undefined) assert.deepEqual(error.details, details);
    return true;
  });

describe('code/send', () => {
  it('refuses a channel the sender cannot deliver, before any cooldown or code', async () => {
    const w = await world({ channels: ['email'] });
    await rejectsWith(w.send('login', sms('86-13800000000')), 'invalid_request', 'this server cannot send sms codes', { field: 'channel' });
    assert.deepEqual(w.random.codes, []);
    assert.deepEqual(await w.send('login', email('a@example.test')), { status: 200, resend_after: 60 });
  });

  it('refuses a register code while registration on that channel is closed', async () => {
    const w = await world({ registerByEmail: true });
    await rejectsWith(w.send('register', sms('86-13800000000')), 'invalid_request', 'registration by sms code is disabled', { field: 'purpose' });
    await w.send('register', email('new@example.test'));
    assert.deepEqual(w.sent.map((m) => m.to), ['new@example.test']);
    const open = await world({ registerBySms: true });
    await open.send('register', sms('86-13800000000'));
    await rejectsWith(open.send('register', email('x@example.test')), 'invalid_request', 'registration by email code is disabled');
  });

  it('delivers only to an account\'s address, a register code, or a login code while registration is open', async () => {
    const w = await world({ registerBySms: true });
    const owner = await w.user({ email: 'owner@example.test' });
    await w.send('login', email('owner@example.test'));
    await w.send('reset_password', email('nobody@example.test'));
    await w.send('login', email('nobody2@example.test'));
    await w.send('login', sms('86-13800000001'));
    await w.send('reset_password', sms('86-13800000009'));
    assert.deepEqual(w.sent.map((m) => [m.channel, m.to, m.purpose, m.code.length]), [
      ['email', 'owner@example.test', 'login', 6],
      ['sms', '86-13800000001', 'login', 6],
    ]);
    assert.equal(w.random.codes.length, 5, 'an undelivered code was not made like any other');
    assert.deepEqual(w.audit.map((e) => [e.type, e.uid, e.sid, e.result, e.reason, e.context]), [
      ['code_sent', owner.uid, null, 'ok', 'email login ow***@example.test', context],
      ['code_sent', null, null, 'ok', 'email reset_password no***@example.test (not sent: no account)', context],
      ['code_sent', null, null, 'ok', 'email login no***@example.test (not sent: no account)', context],
      ['code_sent', null, null, 'ok', 'sms login 86-138****01', context],
      ['code_sent', null, null, 'ok', 'sms reset_password 86-138****09 (not sent: no account)', context],
    ]);
    assert.equal(await w.counter('codesSent', { channel: 'email', purpose: 'login' }), 2);
    assert.equal(await w.counter('codesSent', { channel: 'email', purpose: 'reset_password' }), 1);
    const undelivered = w.random.codes[1] ?? '';
    assert.equal(await consumeCode(w.deps.codes, ['reset_password'], email('nobody@example.test'), undelivered), 'reset_password', 'an undelivered code was not stored');
  });

  it('an sms code for a claimed (unproven) number is delivered to its holder', async () => {
    const w = await world();
    const holder = await w.user({ zone: '86', phone: '13800000002' });
    await w.send('verify', sms('86-13800000002'));
    assert.equal(w.sent.length, 1);
    assert.equal(w.audit[0]?.uid, holder.uid);
    await w.send('login', sms('86-1'));
    assert.equal(w.sent.length, 1, 'a malformed number found an account');
  });

  it('one send per destination and requester a minute; a refused send leaves the first code alone', async () => {
    const w = await world();
    await w.user({ email: 'owner@example.test' });
    await w.send('login', email('owner@example.test'));
    const first = w.lastCode();
    await rejectsWith(w.send('login', email('owner@example.test')), 'rate_limited');
    assert.equal(w.random.codes.length, 1, 'a refused send made a code');
    await w.send('login', email('owner@example.test'), '203.0.113.9');
    assert.equal(await consumeCode(w.deps.codes, ['login'], email('owner@example.test'), first), 'login', 'the stranger\'s send spoilt the owner\'s code');
  });

  it('counts sends under the limit names the configuration uses', async () => {
    const w = await world();
    const to = email('a@example.test');
    await w.send('login', to);
    const id = destinationId(to);
    for (const key of [`rl:code_send_ip:${context.ip}`, `rl:code_send_to:${id}:${context.ip}`, `rl:code_send_to_all:${id}`]) {
      assert.equal(await w.kv.get(key), '1', key);
    }
  });

  it('counts sends per requester, per destination and requester, and per destination', async () => {
    const perIp = await world({ limits: { sendPerIp: 1 } });
    await perIp.send('login', email('a@example.test'));
    await rejectsWith(perIp.send('login', email('b@example.test')), 'rate_limited');
    await perIp.send('login', email('b@example.test'), '203.0.113.9');

    const perPair = await world({ limits: { sendPerDestination: 1 } });
    await perPair.send('login', email('a@example.test'));
    perPair.clock.advance(61_000);
    await rejectsWith(perPair.send('login', email('a@example.test')), 'rate_limited');
    await perPair.send('login', email('a@example.test'), '203.0.113.9');
    await perPair.send('login', email('b@example.test'));

    const perDestination = await world({ limits: { sendPerDestinationAll: 1 } });
    await perDestination.send('login', email('a@example.test'));
    await rejectsWith(perDestination.send('login', email('a@example.test'), '203.0.113.9'), 'rate_limited');
    await perDestination.send('login', email('b@example.test'));
  });

  it('a failed delivery answers 503, withdraws the code, frees the cooldown, and is counted, logged and audited', async () => {
    let fail: unknown = new SenderError('smtp 550');
    const w = await world({ deliver: async () => { if (fail !== null) throw fail; } });
    const owner = await w.user({ email: 'owner@example.test' });
    const to = email('owner@example.test');
    await rejectsWith(w.send('login', to), 'upstream_unavailable', 'the code could not be sent; try again shortly');
    assert.equal(await w.counter('codeDeliveryFailed', { channel: 'email' }), 1);
    assert.deepEqual(w.warnings, [{
      object: { channel: 'email', purpose: 'login', to: 'ow***@example.test', error: 'smtp 550' },
      message: 'one-time code not delivered',
    }]);
    assert.deepEqual(w.audit.map((e) => [e.type, e.uid, e.result, e.reason]), [
      ['code_sent', owner.uid, 'fail', 'email login ow***@example.test (delivery failed)'],
    ]);
    await rejectsWith(consumeCode(w.deps.codes, ['login'], to, w.lastCode()), 'expired', undefined);

    fail = new TypeError('with the code 123456 in it');
    await rejectsWith(w.send('login', to), 'upstream_unavailable');
    assert.equal(w.warnings.at(-1)?.object.error, 'TypeError', 'a non-sender error was logged by more than its name');
    fail = 'a string';
    await rejectsWith(w.send('login', to), 'upstream_unavailable');
    assert.equal(w.warnings.at(-1)?.object.error, 'unknown error');
    fail = null;
    await w.send('login', to);
    assert.equal(await consumeCode(w.deps.codes, ['login'], to, w.lastCode()), 'login');
  });

  it('a code that cannot be withdrawn after a failed delivery is logged, and the answer is still 503', async () => {
    const w = await world({ deliver: async () => { throw new SenderError('gateway 502'); } });
    await w.user({ email: 'owner@example.test' });
    w.deps.codes.withdraw = async () => { throw new SenderError('store down'); };
    await rejectsWith(w.send('login', email('owner@example.test')), 'upstream_unavailable');
    assert.deepEqual(w.warnings.at(-1), {
      object: { channel: 'email', purpose: 'login', error: 'store down' },
      message: 'undelivered one-time code not withdrawn',
    });
  });

  it('answers a fixed time after the request, delivered, undelivered or failed', async () => {
    const w = await world({ answerMs: 800 });
    await w.send('login', email('nobody@example.test'));
    assert.deepEqual(w.delays, [800], 'an undelivered code was answered before its time');
    let fail = false;
    const w2 = await world({ answerMs: 800, deliver: async () => { w2.clock.advance(300); if (fail) throw new SenderError('550'); } });
    await w2.user({ email: 'owner@example.test' });
    await w2.send('login', email('owner@example.test'));
    assert.deepEqual(w2.delays, [500, 500], 'a delivery in 300 ms was not answered at 800 ms');
    w2.delays.length = 0;
    fail = true;
    w2.clock.advance(61_000);
    await rejectsWith(w2.send('login', email('owner@example.test')), 'upstream_unavailable');
    assert.deepEqual(w2.delays, [500, 500], 'a failed delivery was not answered at 800 ms');
  });

  it('a failed delivery within the time is answered 503 at the time; a late one 200, cleaned up after', async () => {
    let finish: (() => void) | undefined;
    const w = await world({
      answerMs: 800,
      deliver: () => new Promise<void>((_, reject) => { finish = () => reject(new SenderError('timeout')); }),
    });
    await w.user({ email: 'owner@example.test' });
    const to = email('owner@example.test');
    assert.deepEqual(await w.send('login', to), { status: 200, resend_after: 60 }, 'a delivery still running was not answered at the time');
    assert.deepEqual(w.delays, [800], 'a late delivery was waited for again');
    finish?.();
    await new Promise((resolve) => setImmediate(resolve));
    await rejectsWith(consumeCode(w.deps.codes, ['login'], to, w.lastCode()), 'expired', undefined);
    assert.equal(w.warnings[0]?.message, 'one-time code not delivered');
    await w.send('login', to); // the cooldown was released
  });
});

describe('consumeCode', () => {
  it('tries the purposes in order, and tells a wrong code from a gone one', async () => {
    const w = await world();
    const to = email('a@example.test');
    await w.deps.codes.issue('register', to);
    const code = w.lastCode();
    await rejectsWith(consumeCode(w.deps.codes, ['login'], to, code), 'expired', 'the code has expired, was already used, or had too many wrong guesses; request a new one');
    await rejectsWith(consumeCode(w.deps.codes, ['login', 'register'], to, code === '000000' ? '000001' : '000000'), 'invalid_credentials', 'wrong code');
    assert.equal(await consumeCode(w.deps.codes, ['login', 'register'], to, code), 'register');
  });
});

describe('a store failure while consuming the code', () => {
  it('is audited as code:error by code login, reset and address verification, and passed on', async () => {
    const w = await world();
    const user = await w.user({ email: 'me@example.test' });
    const down = new Error('store down');
    w.deps.codes.attempt = async () => { throw down; };
    await assert.rejects(codeLogin(w.deps, email('me@example.test'), '123456', login), down);
    await assert.rejects(resetPassword(w.deps, email('me@example.test'), '123456', PASSWORD, context), down);
    await assert.rejects(verifyAddress(w.deps, user.uid, 'email', undefined, '123456', context), down);
    assert.deepEqual(w.audit.map((e) => [e.type, e.reason]), [
      ['login', 'code:error'],
      ['password_reset', 'code:error'],
      ['address_verify', 'email:code:error'],
    ]);
  });
});

describe('code/login', () => {
  it('a wrong or gone code fails, counted and audited under the owner', async () => {
    const w = await world();
    const owner = await w.user({ email: 'owner@example.test', emailVerified: true });
    const to = email('owner@example.test');
    await w.deps.codes.issue('login', to);
    const code = w.lastCode();
    await rejectsWith(codeLogin(w.deps, to, code === '000000' ? '000001' : '000000', login), 'invalid_credentials');
    await rejectsWith(codeLogin(w.deps, email('stranger@example.test'), code, login), 'expired');
    assert.deepEqual(w.audit.map((e) => [e.type, e.uid, e.sid, e.result, e.reason, e.context]), [
      ['login', owner.uid, null, 'fail', 'code:invalid_credentials', login],
      ['login', null, null, 'fail', 'code:expired', login],
    ]);
    assert.equal(await w.counter('logins', { method: 'code', result: 'fail' }), 2);
  });

  it('audits a failure even when the owner cannot be looked up', async () => {
    const w = await world({ accounts: (real) => overriding(real, { findByEmail: async () => { throw new Error('db down'); } }) });
    await rejectsWith(codeLogin(w.deps, email('a@example.test'), '123456', login), 'expired');
    assert.deepEqual(w.audit.map((e) => [e.uid, e.reason]), [[null, 'code:expired']]);
  });

  it('with registration closed, a code for an address nobody proved is a wrong code', async () => {
    const w = await world();
    await w.user({ email: 'claimed@example.test' });
    const to = email('claimed@example.test');
    await w.deps.codes.issue('login', to);
    await rejectsWith(codeLogin(w.deps, to, w.lastCode(), login), 'invalid_credentials', 'wrong code');
    assert.deepEqual(w.audit.map((e) => [e.type, e.uid, e.result, e.reason]), [['login', null, 'fail', 'code:no_account']]);
    assert.equal(await w.counter('logins', { method: 'code', result: 'fail' }), 1);
    assert.equal((await w.runtime.accounts.findByEmail('claimed@example.test'))?.uid, 'uid1', 'the claim moved with registration closed');
  });

  it('with registration open, creates a passwordless account owning the proven address, taking it from a claim', async () => {
    const w = await world({ registerByEmail: true, registerBySms: true });
    const claimant = await w.user({ email: 'new@example.test' });
    const to = email('new@example.test');
    await w.deps.codes.issue('register', to);
    const answer = await codeLogin(w.deps, to, w.lastCode(), login);
    const created = await w.runtime.accounts.findByEmail('new@example.test');
    assert.ok(created);
    assert.notEqual(created.uid, claimant.uid);
    assert.match(created.uid, /^[0-9a-f]{32}$/);
    assert.match(created.username, /^u[0-9a-f]{16}$/);
    assert.equal(created.name, created.username);
    assert.equal(created.emailVerified, true);
    assert.equal(created.passwordHash, null);
    assert.equal(created.phone, null);
    assert.equal(created.phoneVerified, false);
    assert.equal((answer as { uid?: string }).uid, created.uid);
    assert.deepEqual(w.audit.slice(0, 2).map((e) => [e.type, e.uid, e.sid, e.result, e.reason, e.context]), [
      ['address_release', claimant.uid, null, 'ok', 'email', login],
      ['register', created.uid, null, 'ok', 'code', login],
    ]);
    assert.deepEqual(w.audit.slice(2).map((e) => [e.type, e.uid, e.result, e.reason]), [['login', created.uid, 'ok', 'code']]);
    assert.equal(await w.counter('logins', { method: 'code', result: 'ok' }), 1);

    const phone = sms('86-13800000003');
    await w.deps.codes.issue('login', phone);
    await codeLogin(w.deps, phone, w.lastCode(), login);
    assert.deepEqual(w.audit.slice(2).map((e) => e.type).filter((t) => t !== 'login'), ['register'], 'a release was audited with nothing released');
    const byPhone = await w.runtime.accounts.findByPhone('86', '13800000003');
    assert.ok(byPhone);
    assert.equal(byPhone.email, null);
    assert.equal(byPhone.emailVerified, false);
    assert.equal(byPhone.phoneVerified, true);
  });

  it('a code for a malformed number cannot create an account', async () => {
    const w = await world({ registerBySms: true });
    await w.deps.codes.issue('login', sms('86-1'));
    await rejectsWith(codeLogin(w.deps, sms('86-1'), w.lastCode(), login), 'invalid_credentials', 'wrong code');
  });

  it('retries a taken random username, logs into the account a concurrent login created, and gives up after four', async () => {
    let taken: Array<'username' | 'email' | Error> = [];
    let concurrent: User | null = null;
    let winner = true;
    const w = await world({ registerByEmail: true, accounts: (real) => overriding(real, {
      createUser: async (...args) => {
        const next = taken.shift();
        if (next instanceof Error) throw next;
        if (next === 'email' && winner && concurrent === null) concurrent = await real.createUser({ ...args[0], uid: 'winner', username: 'winner' }, args[1]);
        if (next !== undefined) throw new UniqueViolation(next);
        return real.createUser(...args);
      },
    }) });
    const issue = async (to: Destination) => { await w.deps.codes.issue('login', to); return w.lastCode(); };
    taken = ['username', 'username', 'username'];
    await codeLogin(w.deps, email('a@example.test'), await issue(email('a@example.test')), login);
    assert.ok(await w.runtime.accounts.findByEmail('a@example.test'), 'three taken usernames stopped the account');
    taken = ['username', 'username', 'username', 'username'];
    await rejectsWith(codeLogin(w.deps, email('b@example.test'), await issue(email('b@example.test')), login), 'conflict', 'could not create the account; try again', { field: 'to' });
    taken = ['email'];
    const answer = await codeLogin(w.deps, email('c@example.test'), await issue(email('c@example.test')), login);
    assert.equal((answer as { uid?: string }).uid, 'winner', 'the login did not join the account a concurrent login created');
    // Taken by a registration's claim this time, not by an owner: the next round releases it again.
    winner = false;
    taken = ['email'];
    const joined = await codeLogin(w.deps, email('e@example.test'), await issue(email('e@example.test')), login);
    const owner = await w.runtime.accounts.findByEmail('e@example.test');
    assert.ok(owner?.emailVerified, 'a re-claimed address stopped the account');
    assert.equal((joined as { uid?: string }).uid, owner.uid);
    const broken = new Error('db down');
    taken = [broken];
    await assert.rejects(codeLogin(w.deps, email('d@example.test'), await issue(email('d@example.test')), login), broken);
  });

  it('releasing the claim on a malformed number does nothing', async () => {
    const w = await world();
    await releaseClaim(w.deps, sms('86-1'), context);
    assert.deepEqual(w.audit, []);
    assert.deepEqual(addressOf(sms('86-13800000007')), { channel: 'sms', zone: '86', phone: '13800000007' });
    assert.deepEqual(addressOf(email('a@example.test')), { channel: 'email', email: 'a@example.test' });
    assert.equal(addressOf(sms('86-1')), null);
  });

  it('a disabled owner is refused, counted and audited', async () => {
    const w = await world();
    const owner = await w.user({ email: 'owner@example.test', emailVerified: true, status: 'banned' });
    const to = email('owner@example.test');
    await w.deps.codes.issue('login', to);
    await rejectsWith(codeLogin(w.deps, to, w.lastCode(), login), 'account_disabled');
    assert.deepEqual(w.audit.map((e) => [e.type, e.uid, e.result, e.reason]), [['login', owner.uid, 'fail', 'account_disabled']]);
    assert.equal(await w.counter('logins', { method: 'code', result: 'disabled' }), 1);
  });
});

describe('pwdforget', () => {
  it('refuses a weak password before the code is spent', async () => {
    const w = await world();
    const to = email('owner@example.test');
    await w.user({ email: 'owner@example.test', emailVerified: true });
    await w.deps.codes.issue('reset_password', to);
    await rejectsWith(resetPassword(w.deps, to, w.lastCode(), 'owner@example.test', context), 'invalid_request', undefined, { field: 'new_password' });
    await resetPassword(w.deps, to, w.lastCode(), PASSWORD, context);
  });

  it('a wrong code, an unproven address and a disabled account are refused and audited', async () => {
    const w = await world();
    const owner = await w.user({ email: 'owner@example.test', emailVerified: true });
    const disabled = await w.user({ email: 'off@example.test', emailVerified: true, status: 'banned' });
    await w.user({ email: 'claimed@example.test' });
    await rejectsWith(resetPassword(w.deps, email('owner@example.test'), '123456', PASSWORD, context), 'expired');
    await w.deps.codes.issue('reset_password', email('claimed@example.test'));
    await rejectsWith(resetPassword(w.deps, email('claimed@example.test'), w.lastCode(), PASSWORD, context), 'invalid_credentials', 'wrong code');
    await w.deps.codes.issue('reset_password', email('off@example.test'));
    await rejectsWith(resetPassword(w.deps, email('off@example.test'), w.lastCode(), PASSWORD, context), 'account_disabled');
    assert.deepEqual(w.audit.map((e) => [e.type, e.uid, e.sid, e.result, e.reason, e.context]), [
      ['password_reset', owner.uid, null, 'fail', 'code:expired', context],
      ['password_reset', null, null, 'fail', 'code:no_account', context],
      ['password_reset', disabled.uid, null, 'fail', 'account_disabled', context],
    ]);
  });

  it('audits a failure even when the owner cannot be looked up', async () => {
    const w = await world({ accounts: (real) => overriding(real, { findByEmail: async () => { throw new Error('db down'); } }) });
    await rejectsWith(resetPassword(w.deps, email('a@example.test'), '123456', PASSWORD, context), 'expired');
    assert.deepEqual(w.audit.map((e) => [e.uid, e.reason]), [[null, 'code:expired']]);
  });

  it('sets the password and ends every session', async () => {
    const w = await world();
    const owner = await w.user({ email: 'owner@example.test', emailVerified: true, passwordHash: await hasher.hash('the old password here') });
    const to = email('owner@example.test');
    await w.runtime.sessions.issue({ uid: owner.uid, flag: 1, device: login.device, method: 'password', ip: context.ip, userAgent: 'x' });
    await w.runtime.sessions.issue({ uid: owner.uid, flag: 0, device: { ...login.device, device_id: 'phone' }, method: 'password', ip: context.ip, userAgent: 'x' });
    await w.deps.codes.issue('reset_password', to);
    await resetPassword(w.deps, to, w.lastCode(), PASSWORD, context);
    const stored = await w.runtime.accounts.findByUid(owner.uid);
    assert.ok(stored?.passwordHash);
    assert.equal((await w.runtime.hasher.verify(stored.passwordHash, PASSWORD)).ok, true);
    assert.deepEqual(w.audit.map((e) => [e.type, e.uid, e.result, e.reason]), [['password_reset', owner.uid, 'ok', 'revoked:2']]);
    assert.deepEqual(w.ended, ['password', 'password'], 'the sessions did not end for the password reset');
  });

  it('wins over a password changed between its read and its write', async () => {
    let raced = false;
    const w = await world({ accounts: (real) => overriding(real, {
      updatePasswordHash: async (uid, expected, next, now) => {
        if (!raced) {
          raced = true;
          assert.equal(await real.updatePasswordHash(uid, expected, 'changed meanwhile', now), true);
        }
        return real.updatePasswordHash(uid, expected, next, now);
      },
    }) });
    const owner = await w.user({ email: 'owner@example.test', emailVerified: true });
    await w.deps.codes.issue('reset_password', email('owner@example.test'));
    await resetPassword(w.deps, email('owner@example.test'), w.lastCode(), PASSWORD, context);
    assert.equal((await w.runtime.hasher.verify((await w.runtime.accounts.findByUid(owner.uid))?.passwordHash ?? '', PASSWORD)).ok, true);
  });

  it('wins over a concurrent password change; a deleted account is a wrong code; endless changes a conflict', async () => {
    let losses = 0;
    let deleted = false;
    const w = await world({ accounts: (real) => overriding(real, {
      updatePasswordHash: async (...args) => {
        if (losses === 0) return real.updatePasswordHash(...args);
        losses -= 1;
        return false;
      },
      findByUid: async (uid) => deleted ? null : real.findByUid(uid),
    }) });
    const owner = await w.user({ email: 'owner@example.test', emailVerified: true });
    const to = email('owner@example.test');
    losses = 4;
    await w.deps.codes.issue('reset_password', to);
    await resetPassword(w.deps, to, w.lastCode(), PASSWORD, context);
    assert.equal((await w.runtime.hasher.verify((await w.runtime.accounts.findByUid(owner.uid))?.passwordHash ?? '', PASSWORD)).ok, true);
    losses = 5;
    await w.deps.codes.issue('reset_password', to);
    await rejectsWith(resetPassword(w.deps, to, w.lastCode(), PASSWORD, context), 'conflict', 'the password was changed meanwhile; try again', { field: 'new_password' });
    losses = 1;
    deleted = true;
    w.clock.advance(61_000);
    await w.deps.codes.issue('reset_password', to);
    await rejectsWith(resetPassword(w.deps, to, w.lastCode(), PASSWORD, context), 'invalid_credentials', 'wrong code');
  });
});

describe('verify_address', () => {
  it('proves the account\'s own address with a verify code, and only that address', async () => {
    const w = await world();
    const user = await w.user({ email: 'me@example.test', zone: '86', phone: '13800000004' });
    await rejectsWith(verifyAddress(w.deps, 'nope', 'email', undefined, '123456', context), 'not_found', 'user not found');
    await rejectsWith(verifyAddress(w.deps, user.uid, 'email', 'other@example.test', '123456', context), 'invalid_request', 'only the account\'s own email address can be verified', { field: 'to' });
    await rejectsWith(verifyAddress(w.deps, user.uid, 'sms', '86-13900000000', '123456', context), 'invalid_request', 'only the account\'s own phone number can be verified');
    await rejectsWith(verifyAddress(w.deps, user.uid, 'email', ' ME@example.test ', '123456', context), 'expired');
    await w.deps.codes.issue('verify', email('me@example.test'));
    assert.deepEqual(await verifyAddress(w.deps, user.uid, 'email', undefined, w.lastCode(), context), { status: 200, verified: true });
    assert.equal((await w.runtime.accounts.findByUid(user.uid))?.emailVerified, true);
    assert.deepEqual(await verifyAddress(w.deps, user.uid, 'email', undefined, '000000', context), { status: 200, verified: true }, 'a proven address asked for a code');
    await w.deps.codes.issue('verify', sms('86-13800000004'));
    await verifyAddress(w.deps, user.uid, 'sms', '86-13800000004', w.lastCode(), context);
    assert.equal((await w.runtime.accounts.findByUid(user.uid))?.phoneVerified, true);
    assert.deepEqual(w.audit.map((e) => [e.type, e.uid, e.sid, e.result, e.reason, e.context]), [
      ['address_verify', user.uid, null, 'fail', 'email:code:expired', context],
      ['address_verify', user.uid, null, 'ok', 'email', context],
      ['address_verify', user.uid, null, 'ok', 'sms', context],
    ]);
  });

  it('an account without the address is told so', async () => {
    const w = await world();
    const mailOnly = await w.user({ email: 'me@example.test' });
    const phoneOnly = await w.user({ zone: '86', phone: '13800000005' });
    const zoneOnly = await w.user({ zone: '86' });
    const numberOnly = await w.user({ phone: '13800000006' });
    await rejectsWith(verifyAddress(w.deps, numberOnly.uid, 'sms', undefined, '123456', context), 'invalid_request', 'the account has no phone number');
    await rejectsWith(verifyAddress(w.deps, mailOnly.uid, 'sms', undefined, '123456', context), 'invalid_request', 'the account has no phone number', { field: 'channel' });
    await rejectsWith(verifyAddress(w.deps, phoneOnly.uid, 'email', undefined, '123456', context), 'invalid_request', 'the account has no email address');
    await rejectsWith(verifyAddress(w.deps, zoneOnly.uid, 'sms', undefined, '123456', context), 'invalid_request', 'the account has no phone number');
  });

  it('a stored number that is not a phone number cannot be proven', async () => {
    const w = await world();
    const user = await w.user({ zone: '86', phone: '12' });
    await w.deps.codes.issue('verify', sms('86-12'));
    await rejectsWith(verifyAddress(w.deps, user.uid, 'sms', undefined, w.lastCode(), context), 'conflict', 'the address is no longer on this account');
  });

  it('an address proven by another account meanwhile is a conflict', async () => {
    const w = await world({ accounts: (real) => overriding(real, { markVerified: async () => false }) });
    const user = await w.user({ email: 'me@example.test' });
    await w.deps.codes.issue('verify', email('me@example.test'));
    await rejectsWith(verifyAddress(w.deps, user.uid, 'email', undefined, w.lastCode(), context), 'conflict', 'the address is no longer on this account', { field: 'to' });
  });
});

describe('ResendCooldown', () => {
  it('holds a destination for one requester for a minute, telling the seconds left, and frees only its own hold', async () => {
    const w = await world();
    const to = email('a@example.test');
    const holder = await w.deps.cooldown.start(to, '198.51.100.7');
    assert.equal(await w.kv.get(`code:cooldown:${destinationId(to)}:198.51.100.7`), holder);
    assert.equal(await w.kv.pttl(`code:cooldown:${destinationId(to)}:198.51.100.7`), 60_000);
    const retryAfter = async () => {
      try {
        await w.deps.cooldown.start(to, '198.51.100.7');
      } catch (error) {
        assert.ok(error instanceof LatchkeyError && error.code === 'rate_limited');
        return error.retryAfter;
      }
      return 'started';
    };
    assert.equal(await retryAfter(), 60);
    w.clock.advance(30_500);
    assert.equal(await retryAfter(), 30);
    w.clock.advance(29_400);
    assert.equal(await retryAfter(), 1);
    await w.deps.cooldown.start(to, '203.0.113.9');
    await w.deps.cooldown.release(to, '198.51.100.7', 'someone else');
    assert.equal(await retryAfter(), 1);
    await w.deps.cooldown.release(to, '198.51.100.7', holder);
    assert.equal(await retryAfter(), 'started');
    await w.kv.set(`code:cooldown:${destinationId(to)}:no-ttl`, 'x');
    await rejectsWith(w.deps.cooldown.start(to, 'no-ttl'), 'rate_limited');
    const noTtl = await w.deps.cooldown.start(to, 'no-ttl').catch((error: LatchkeyError) => error.retryAfter);
    assert.equal(noTtl, 1);
  });

  it('a hold that vanished between the write and the look is one second', async () => {
    const kv = new MemoryKv();
    kv.set = async () => false;
    const cooldown = new ResendCooldown(kv, new TellingRandom());
    const left = await cooldown.start(email('a@example.test'), 'x').catch((error: LatchkeyError) => error.retryAfter);
    assert.equal(left, 1);
  });
});

describe('SendTiming', () => {
  it('answers answerMs after the request: waits out the rest, never a negative time', async () => {
    const clock = new ManualClock();
    const delays: number[] = [];
    const timing = new SendTiming(clock, 500, async (ms) => { delays.push(ms); });
    const deadline = timing.deadline();
    assert.equal(deadline, clock.now() + 500);
    clock.advance(499);
    await timing.until(deadline);
    clock.advance(1);
    await timing.until(deadline);
    clock.advance(100);
    await timing.until(deadline);
    assert.deepEqual(delays, [1]);
    assert.equal(await timing.race(deadline, new Promise(() => {})), 'late');
    assert.deepEqual(delays, [1, 0]);
  });

  it('waits in real time by default', async () => {
    const timing = new SendTiming(systemClock, 30);
    const started = performance.now();
    await timing.until(timing.deadline());
    assert.ok(performance.now() - started >= 20, 'the answer was not held back');
  });

  it('a delivery that ends first is its own outcome; with answerMs 0 the answer waits for it', async () => {
    const clock = new ManualClock();
    const delays: number[] = [];
    const never = new SendTiming(clock, 500, async (ms) => { delays.push(ms); await new Promise(() => {}); });
    assert.equal(await never.race(never.deadline(), Promise.resolve('failed')), 'failed');
    assert.deepEqual(delays, [500]);
    const open = new SendTiming(clock, 0, async (ms) => { delays.push(ms); });
    let done: ((outcome: 'delivered') => void) | undefined;
    const outcome = open.race(open.deadline(), new Promise((resolve) => { done = resolve; }));
    await new Promise((resolve) => setImmediate(resolve));
    done?.('delivered');
    assert.equal(await outcome, 'delivered');
    await open.until(open.deadline());
    assert.deepEqual(delays, [500], 'answerMs 0 waited');
  });
});
