/**
 * The QR login's steps in process, on the in-memory store and a clock the test moves: what the
 * e2e tests prove over HTTP, asserted here at every boundary (the exact second a request lapses,
 * who may answer, what is stored and for how long), so that a mutant of src/flows/qr is caught in a
 * second rather than by a spawned round trip, or not at all.
 */
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { LatchkeyError } from '../../src/core/errors.ts';
import { SessionService } from '../../src/core/sessions/service.ts';
import { defaultDevicePolicies } from '../../src/core/sessions/policy.ts';
import { sessionKey } from '../../src/core/sessions/keys.ts';
import type { Session } from '../../src/core/sessions/record.ts';
import { answerLoginRequest, scanLoginRequest } from '../../src/flows/qr/approval.ts';
import { approverAlive, lapsedApproval, passwordStamp } from '../../src/flows/qr/approver.ts';
import type { QrFlowDeps } from '../../src/flows/qr/deps.ts';
import { exchangeAuthCode } from '../../src/flows/qr/exchange.ts';
import { PollSlots } from '../../src/flows/qr/poll-slots.ts';
import {
  QR_STATUSES, RETAIN_AFTER_EXPIRY_MS, parseQrRecord, recordKey, statusChannel, storeTtlMs, visibleStatus, type QrRecord,
} from '../../src/flows/qr/record.ts';
import { createLoginRequest, pollLoginStatus, type PollInput } from '../../src/flows/qr/request.ts';
import {
  deriveAuthCode, hashSecret, matchesHash, newCodeNonce, newPollSecret, newRequestId,
} from '../../src/flows/qr/secrets.ts';
import { sameSecret } from '../../src/core/constant-time.ts';
import { readQrRecord, transition } from '../../src/flows/qr/transition.ts';
import type { Kv } from '../../src/ports/kv.ts';
import type { User } from '../../src/ports/accounts.ts';
import { cryptoRandom, type Random } from '../../src/ports/random.ts';

const T0 = 1_800_000_000_000;
const TTL = { request: 120, poll: 1, code: 60 };
const context = { ip: '198.51.100.7', userAgent: 'test' };
const device = { device_id: 'browser-1', device_name: 'Firefox', device_model: 'Firefox 140' };
const requester = { flag: 1 as const, device, ip: '198.51.100.7', user_agent: 'Mozilla/5.0' };

interface Audited { type: string; uid: string | null; sid: string | null; result: string; reason: string | null }

function user(uid: string, over: Partial<User> = {}): User {
  return {
    uid, username: uid, name: uid, email: null, zone: null, phone: null, emailVerified: false, phoneVerified: false,
    passwordHash: `hash-of-${uid}`, role: 'user', status: 'active', ...over,
  } as User;
}

/** A QR flow on MemoryKv with a real SessionService; `users` is the account store. */
function world(random: Random = cryptoRandom) {
  const clock = { at: T0, now() { return this.at; } };
  const kv = new MemoryKv(clock);
  const users = new Map<string, User>();
  const audit: Audited[] = [];
  const logins: Array<Record<string, string>> = [];
  const sessions = new SessionService({
    kv, clock, random, policies: defaultDevicePolicies, ttlMs: 3_600_000,
    accountStatus: async (uid) => users.get(uid)?.status ?? null,
  } as ConstructorParameters<typeof SessionService>[0]);
  const accounts = { findByUid: async (uid: string) => users.get(uid) ?? null, upsertDevice: async () => {} };
  const deps = {
    kv, clock, random, sessions, accounts,
    audit: { record: async (event: Audited) => { audit.push({ type: event.type, uid: event.uid, sid: event.sid, result: event.result, reason: event.reason }); } },
    metrics: { logins: { inc: (labels: Record<string, string>) => { logins.push(labels); } } },
    config: { qr: { requestTtlSeconds: TTL.request, pollTimeoutSeconds: TTL.poll, authCodeTtlSeconds: TTL.code, maxPollsPerIp: 20, maxPollsPerRequest: 3 } },
    secondStep: { challenge: async () => null },
  } as unknown as QrFlowDeps;
  return { clock, kv, users, audit, logins, sessions, deps };
}

type World = ReturnType<typeof world>;

async function appSession(w: World, uid: string, flag: 0 | 1 = 0): Promise<Session> {
  if (!w.users.has(uid)) w.users.set(uid, user(uid));
  const issued = await w.sessions.issue({ uid, flag, device: { device_id: `${uid}-${flag}`, device_name: 'Phone', device_model: 'Pixel' }, method: 'password', ip: '10.0.0.1', userAgent: 'app' });
  return issued.session;
}

const stored = async (w: World, uuid: string): Promise<QrRecord> => {
  const record = await readQrRecord(w.kv, uuid);
  assert.ok(record !== null, 'record missing');
  return record;
};

async function code(w: World, uuid: string, pollSecret: string): Promise<string> {
  const record = await stored(w, uuid);
  assert.ok(record.code_nonce !== null);
  return deriveAuthCode(pollSecret, uuid, record.code_nonce);
}

async function refused(promise: Promise<unknown>, errorCode: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof LatchkeyError, `not a LatchkeyError: ${String(error)}`);
    assert.equal(error.code, errorCode, error.message);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  });
}

function pollInput(uuid: string, pollSecret: string | undefined, over: Partial<PollInput> = {}): PollInput {
  // The clock stands still, so a held poll's timeout never comes: the signal bounds it instead,
  // answering with the status as it is (a mutant that loses a wake-up fails instead of hanging).
  return { uuid, pollSecret, lastStatus: undefined, signal: AbortSignal.timeout(3_000), clientIp: '198.51.100.7', slots: new PollSlots({ perIp: 20, perRequest: 3 }), ...over };
}

async function approved(w: World, uid = 'alice') {
  const created = await createLoginRequest(w.deps, requester);
  const scanner = await appSession(w, uid);
  await scanLoginRequest(w.deps, scanner, created.uuid, context);
  await answerLoginRequest(w.deps, scanner, created.uuid, true, context);
  return { created, scanner, authCode: await code(w, created.uuid, created.poll_secret) };
}

describe('QR secrets', () => {
  it('draws a 32-hex request id and 256-bit base64url secrets', () => {
    assert.match(newRequestId(cryptoRandom), /^[0-9a-f]{32}$/);
    assert.match(newPollSecret(cryptoRandom), /^[A-Za-z0-9_-]{43}$/);
    assert.match(newCodeNonce(cryptoRandom), /^[A-Za-z0-9_-]{43}$/);
  });

  it('derives the auth code as HMAC-SHA256(poll secret, label, uuid, nonce), base64url', () => {
    // Nodes of two releases share the store in a rolling deploy: the derivation must not drift.
    const expected = createHmac('sha256', 'secret').update('latchkey qr auth code\0u1\0n1').digest('base64url');
    assert.equal(deriveAuthCode('secret', 'u1', 'n1'), expected);
    assert.notEqual(deriveAuthCode('secret', 'u1', 'n2'), expected);
  });

  it('compares secrets and hashes exactly', () => {
    assert.equal(sameSecret('abc', 'abc'), true);
    assert.equal(sameSecret('abc', 'abd'), false);
    assert.equal(hashSecret('s'), createHash('sha256').update('s').digest('base64url'));
    assert.equal(matchesHash('s', hashSecret('s')), true);
    assert.equal(matchesHash('t', hashSecret('s')), false);
    assert.equal(matchesHash(undefined, hashSecret('s')), false);
    assert.equal(matchesHash('', hashSecret('')), false, 'an empty secret matched');
    assert.equal(matchesHash('s', null), false);
    assert.equal(matchesHash('s', 'c2hvcnQ'), false, 'a stored hash of another length must not match (nor throw)');
  });
});

describe('QR record', () => {
  const base = { version: 1, poll_secret_hash: 'h', expires_at: T0 } as QrRecord;

  it('lists the statuses a poller can see', () => {
    assert.deepEqual(QR_STATUSES, ['waitScan', 'scanned', 'authed', 'rejected', 'expired']);
  });

  it('shows a live state until the exact millisecond it lapses, consumed as expired, rejected as rejected', () => {
    assert.equal(visibleStatus({ ...base, status: 'scanned' }, T0 - 1), 'scanned');
    assert.equal(visibleStatus({ ...base, status: 'scanned' }, T0), 'expired');
    assert.equal(visibleStatus({ ...base, status: 'consumed' }, T0 - 1), 'expired');
    assert.equal(visibleStatus({ ...base, status: 'rejected' }, T0 + 1), 'rejected');
  });

  it('parses only records with a version and a poll secret hash, filling the fields older records lack', () => {
    assert.equal(parseQrRecord('{'), null);
    assert.equal(parseQrRecord(JSON.stringify({ poll_secret_hash: 'h' })), null);
    assert.equal(parseQrRecord(JSON.stringify({ version: 1 })), null);
    const old = parseQrRecord(JSON.stringify({ version: 2, poll_secret_hash: 'h', status: 'authed', scanner_uid: 'u' }));
    assert.deepEqual(old, { version: 2, poll_secret_hash: 'h', status: 'authed', scanner_uid: 'u', scanner_sid: null, password_stamp: null, code_nonce: null });
    const full = { version: 2, poll_secret_hash: 'h', scanner_sid: 's', password_stamp: 'p', code_nonce: 'n' };
    assert.deepEqual(parseQrRecord(JSON.stringify(full)), full);
  });

  it('keeps a record ten minutes past its lapse, and at least a millisecond', () => {
    assert.equal(RETAIN_AFTER_EXPIRY_MS, 600_000);
    assert.equal(storeTtlMs(base, T0 - 5), 600_005);
    assert.equal(storeTtlMs(base, T0 + 700_000), 1);
  });

  it('names the key and channel every node of a deployment shares', () => {
    assert.equal(recordKey('abc'), 'qr:{abc}');
    assert.equal(statusChannel('abc'), 'qr:abc');
  });
});

describe('QR transition', () => {
  it('refuses an unknown or unreadable request, and changes nothing for a null step', async () => {
    const w = world();
    await refused(transition(w.kv, w.clock, 'nope', () => null), 'not_found', /^login request not found$/);
    await w.kv.set(recordKey('bad'), 'not json');
    await refused(transition(w.kv, w.clock, 'bad', () => null), 'not_found');
    const { uuid } = await createLoginRequest(w.deps, requester);
    const messages: string[] = [];
    await w.kv.subscribe(statusChannel(uuid), (m) => messages.push(m));
    const same = await transition(w.kv, w.clock, uuid, () => null);
    assert.equal(same.changed, false);
    assert.equal(same.record.version, 1);
    assert.deepEqual(messages, []);
  });

  it('bumps the version, sets the store TTL from the new record, and publishes the version', async () => {
    const w = world();
    const { uuid } = await createLoginRequest(w.deps, requester);
    const messages: string[] = [];
    await w.kv.subscribe(statusChannel(uuid), (m) => messages.push(m));
    const moved = await transition(w.kv, w.clock, uuid, (current, now) => ({ ...current, status: 'rejected', expires_at: now + 1000 }));
    assert.equal(moved.changed, true);
    assert.equal(moved.record.version, 2);
    assert.equal((await stored(w, uuid)).version, 2);
    assert.equal(await w.kv.pttl(recordKey(uuid)), 1000 + RETAIN_AFTER_EXPIRY_MS);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(messages, ['2']);
  });

  it('still reports the change when the wake-up cannot be published', async () => {
    const w = world();
    const { uuid } = await createLoginRequest(w.deps, requester);
    const kv = new Proxy(w.kv, {
      get(target, prop) {
        if (prop === 'publish') return () => Promise.reject(new Error('pub/sub down'));
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const moved = await transition(kv, w.clock, uuid, (current) => ({ ...current, status: 'rejected' }));
    assert.equal(moved.changed, true);
  });

  it('retries a lost compare-and-set sixteen times, then gives up with a conflict', async () => {
    const w = world();
    const { uuid } = await createLoginRequest(w.deps, requester);
    let steps = 0;
    const kv = new Proxy(w.kv, {
      get(target, prop) {
        if (prop === 'compareAndSet') return async () => false;
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    await refused(transition(kv, w.clock, uuid, (current) => { steps += 1; return { ...current, status: 'rejected' }; }), 'conflict', /changing too fast/);
    assert.equal(steps, 16);
  });

  it('reads an unknown request as null', async () => {
    assert.equal(await readQrRecord(new MemoryKv(), 'nope'), null);
  });
});

describe('QR request', () => {
  it('stores a waiting request under its uuid for its lifetime plus the retention, with the poll secret only hashed', async () => {
    const w = world();
    const created = await createLoginRequest(w.deps, requester);
    assert.equal(created.expires_at, T0 + TTL.request * 1000);
    assert.equal(created.qrcode.text, `latchkey://qr/${created.uuid}`);
    const record = await stored(w, created.uuid);
    assert.deepEqual(record, {
      version: 1, status: 'waitScan', requester, poll_secret_hash: hashSecret(created.poll_secret), scanner_uid: null, scanner_sid: null,
      password_stamp: null, code_nonce: null, created_at: T0, expires_at: T0 + TTL.request * 1000,
    });
    assert.equal(await w.kv.pttl(recordKey(created.uuid)), TTL.request * 1000 + RETAIN_AFTER_EXPIRY_MS);
  });

  it('never overwrites a request: a colliding uuid is an error', async () => {
    const fixed: Random = { bytes: (n) => Buffer.alloc(n, 7), int: () => 0 };
    const w = world(fixed);
    const first = await createLoginRequest(w.deps, requester);
    await assert.rejects(createLoginRequest(w.deps, requester), /QR request id collision/);
    assert.equal((await stored(w, first.uuid)).poll_secret_hash, hashSecret(first.poll_secret));
  });

  it('answers an unknown uuid, a missing secret and a wrong secret with the same 404', async () => {
    const w = world();
    const created = await createLoginRequest(w.deps, requester);
    await refused(pollLoginStatus(w.deps, pollInput('nope', created.poll_secret)), 'not_found', /login request not found/);
    await refused(pollLoginStatus(w.deps, pollInput(created.uuid, undefined)), 'not_found');
    await refused(pollLoginStatus(w.deps, pollInput(created.uuid, 'wrong')), 'not_found');
  });

  it('answers news at once without taking a slot, and a final status even when it is the one last seen', async () => {
    const w = world();
    const created = await createLoginRequest(w.deps, requester);
    const full = new PollSlots({ perIp: 1, perRequest: 1 });
    assert.notEqual(full.take('198.51.100.7', created.uuid), null);
    const news = await pollLoginStatus(w.deps, pollInput(created.uuid, created.poll_secret, { lastStatus: 'scanned', slots: full }));
    assert.deepEqual(news, { status: 'waitScan' });
    w.clock.at = created.expires_at;
    const lapsed = await pollLoginStatus(w.deps, pollInput(created.uuid, created.poll_secret, { lastStatus: 'expired', slots: full }));
    assert.deepEqual(lapsed, { status: 'expired' });
  });

  it('answers authed and rejected at once even to a poller that has seen them (the caller must act, not wait)', async () => {
    const w = world();
    const { created, authCode } = await approved(w);
    const full = new PollSlots({ perIp: 1, perRequest: 1 });
    assert.notEqual(full.take('198.51.100.7', created.uuid), null);
    const again = await pollLoginStatus(w.deps, pollInput(created.uuid, created.poll_secret, { lastStatus: 'authed', slots: full }));
    assert.deepEqual(again, { status: 'authed', auth_code: authCode });
    const other = await createLoginRequest(w.deps, requester);
    const scanner = await appSession(w, 'bob');
    await scanLoginRequest(w.deps, scanner, other.uuid, context);
    await answerLoginRequest(w.deps, scanner, other.uuid, false, context);
    const rejected = await pollLoginStatus(w.deps, pollInput(other.uuid, other.poll_secret, { lastStatus: 'rejected', slots: full }));
    assert.deepEqual(rejected, { status: 'rejected' });
  });

  it('refuses a poll past the caps with 429 and Retry-After 1, and gives the slot back after a held poll', async () => {
    const w = world();
    const created = await createLoginRequest(w.deps, requester);
    const slots = new PollSlots({ perIp: 5, perRequest: 1 });
    const release = slots.take('203.0.113.1', created.uuid);
    assert.ok(release !== null);
    await assert.rejects(pollLoginStatus(w.deps, pollInput(created.uuid, created.poll_secret, { slots })), (error: unknown) => {
      assert.ok(error instanceof LatchkeyError);
      assert.equal(error.code, 'rate_limited');
      assert.equal(error.retryAfter, 1);
      return true;
    });
    release();
    const aborted = new AbortController();
    aborted.abort();
    assert.deepEqual(await pollLoginStatus(w.deps, pollInput(created.uuid, created.poll_secret, { slots, signal: aborted.signal })), { status: 'waitScan' });
    assert.notEqual(slots.take('203.0.113.1', created.uuid), null, 'the held poll kept its slot');
  });

  it('wakes a held poll on the scan at once, and hands out the code once approved', async () => {
    const w = world();
    const created = await createLoginRequest(w.deps, requester);
    const scanner = await appSession(w, 'alice');
    // A long poll timeout, so only the wake-up (not a periodic re-read) can answer before the 3 s signal.
    const deps = { ...w.deps, config: { qr: { ...w.deps.config.qr, pollTimeoutSeconds: 30 } } } as QrFlowDeps;
    const held = pollLoginStatus(deps, pollInput(created.uuid, created.poll_secret));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const scannedAt = Date.now();
    await scanLoginRequest(w.deps, scanner, created.uuid, context);
    assert.deepEqual(await held, { status: 'scanned' });
    assert.ok(Date.now() - scannedAt < 2_000, `the wake-up took ${Date.now() - scannedAt} ms`);
    await answerLoginRequest(w.deps, scanner, created.uuid, true, context);
    const authed = await pollLoginStatus(w.deps, pollInput(created.uuid, created.poll_secret, { lastStatus: 'scanned' }));
    assert.deepEqual(authed, { status: 'authed', auth_code: await code(w, created.uuid, created.poll_secret) });
  });

  it('shows a gone record as expired, and an approval without a nonce as expired with no code', async () => {
    const w = world();
    const created = await createLoginRequest(w.deps, requester);
    const record = await stored(w, created.uuid);
    await w.kv.set(recordKey(created.uuid), JSON.stringify({ ...record, status: 'authed', scanner_uid: 'u', code_nonce: null }));
    assert.deepEqual(await pollLoginStatus(w.deps, pollInput(created.uuid, created.poll_secret, { lastStatus: 'scanned' })), { status: 'expired' });
    // Gone between the first read and the answer: the answer is "expired", not an error.
    const kv = w.kv;
    let reads = 0;
    const vanishing = new Proxy(kv, {
      get(target, prop) {
        if (prop === 'get') return async (key: string) => ((reads += 1) === 1 ? kv.get(key) : null);
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as Kv;
    await w.kv.set(recordKey(created.uuid), JSON.stringify(record));
    assert.deepEqual(await pollLoginStatus({ ...w.deps, kv: vanishing }, pollInput(created.uuid, created.poll_secret, { lastStatus: 'scanned' })), { status: 'expired' });
  });

  it('answers a held poll at its timeout with the status as it is', async () => {
    const w = world();
    const created = await createLoginRequest(w.deps, requester);
    const started = Date.now();
    const clock = { now: () => T0 + (Date.now() - started) };
    const answer = await pollLoginStatus({ ...w.deps, clock }, pollInput(created.uuid, created.poll_secret));
    const took = Date.now() - started;
    assert.deepEqual(answer, { status: 'waitScan' });
    assert.ok(took >= 900 && took < 2_500, `a 1 s poll answered after ${took} ms`);
  });

  it('holds a poll without busy re-reads, even after a wake-up that changed nothing, and ends its subscription', async () => {
    const w = world();
    const created = await createLoginRequest(w.deps, requester);
    let reads = 0;
    let subscribed = 0;
    const kv = new Proxy(w.kv, {
      get(target, prop) {
        if (prop === 'get') return (key: string) => { reads += 1; return target.get(key); };
        if (prop === 'subscribe') {
          return async (channel: string, handler: (m: string) => void) => {
            subscribed += 1;
            const end = await target.subscribe(channel, handler);
            return async () => { subscribed -= 1; await end(); };
          };
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as Kv;
    const started = Date.now();
    const clock = { now: () => T0 + (Date.now() - started) };
    const deps = { ...w.deps, kv, clock, config: { qr: { ...w.deps.config.qr, pollTimeoutSeconds: 30 } } } as QrFlowDeps;
    const held = pollLoginStatus(deps, pollInput(created.uuid, created.poll_secret, { signal: AbortSignal.timeout(400) }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(subscribed, 1);
    await w.kv.publish(statusChannel(created.uuid), 'nothing new');
    assert.deepEqual(await held, { status: 'waitScan' });
    assert.ok(Date.now() - started < 2_500, `the abort at 400 ms answered after ${Date.now() - started} ms`);
    assert.ok(reads <= 4, `${reads} reads in 400 ms`);
    assert.equal(subscribed, 0, 'the poll kept its subscription');
  });

  it('answers a held poll when the scanner\'s window lapses', async () => {
    const w = world();
    const created = await createLoginRequest(w.deps, requester);
    await scanLoginRequest(w.deps, await appSession(w, 'alice'), created.uuid, context);
    const record = await stored(w, created.uuid);
    w.clock.at = record.expires_at - 50;
    const started = Date.now();
    const clock = { now: () => w.clock.at + (Date.now() - started) };
    const deps = { ...w.deps, clock, config: { qr: { ...w.deps.config.qr, pollTimeoutSeconds: 30 } } } as QrFlowDeps;
    assert.deepEqual(await pollLoginStatus(deps, pollInput(created.uuid, created.poll_secret)), { status: 'expired' });
    assert.ok(Date.now() - started < 2_500, `answered after ${Date.now() - started} ms`);
  });

  it('does not lose a wake-up that arrives while the held poll is reading', async () => {
    const w = world();
    const created = await createLoginRequest(w.deps, requester);
    const scanner = await appSession(w, 'alice');
    let reads = 0;
    const kv = new Proxy(w.kv, {
      get(target, prop) {
        if (prop === 'get') {
          return async (key: string) => {
            const value = await target.get(key);
            // The held poll's first read has the old value in hand when the scan lands and is announced.
            if (key === recordKey(created.uuid) && (reads += 1) === 2) {
              await scanLoginRequest(w.deps, scanner, created.uuid, context);
              await new Promise((resolve) => setTimeout(resolve, 20));
            }
            return value;
          };
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as Kv;
    const deps = { ...w.deps, kv, config: { qr: { ...w.deps.config.qr, pollTimeoutSeconds: 30 } } } as QrFlowDeps;
    const started = Date.now();
    assert.deepEqual(await pollLoginStatus(deps, pollInput(created.uuid, created.poll_secret)), { status: 'scanned' });
    assert.ok(Date.now() - started < 2_000, `the wake-up during the read was lost: answered after ${Date.now() - started} ms`);
  });

  it('a wait woken early leaves no timer behind to swallow the next wait\'s wake-up', async () => {
    const w = world();
    const created = await createLoginRequest(w.deps, requester);
    const scanner = await appSession(w, 'alice');
    // The poll's clock: the first wait is 200 ms (the request seems to lapse then), the second 5 s.
    const clock = { at: created.expires_at - 200, now() { return this.at; } };
    const deps = { ...w.deps, clock, config: { qr: { ...w.deps.config.qr, pollTimeoutSeconds: 30 } } } as QrFlowDeps;
    const held = pollLoginStatus(deps, pollInput(created.uuid, created.poll_secret));
    await new Promise((resolve) => setTimeout(resolve, 50));
    clock.at = created.expires_at - 10_000;
    await w.kv.publish(statusChannel(created.uuid), 'nothing new');
    // Past the first wait's 200 ms: its timer, had it been left running, has fired by now.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const scannedAt = Date.now();
    await scanLoginRequest(w.deps, scanner, created.uuid, context);
    assert.deepEqual(await held, { status: 'scanned' });
    assert.ok(Date.now() - scannedAt < 2_000, `the scan's wake-up was lost: answered after ${Date.now() - scannedAt} ms`);
  });

  it('answers a held poll when the request lapses, not only at the poll timeout', async () => {
    const w = world();
    const created = await createLoginRequest(w.deps, requester);
    // Real time drives the wait; the store clock is moved so the request lapses 50 ms in.
    w.clock.at = created.expires_at - 50;
    const started = Date.now();
    const clock = { now: () => w.clock.at + (Date.now() - started) };
    const deps = { ...w.deps, clock, config: { qr: { ...w.deps.config.qr, pollTimeoutSeconds: 30 } } } as QrFlowDeps;
    const answer = await pollLoginStatus(deps, pollInput(created.uuid, created.poll_secret));
    assert.deepEqual(answer, { status: 'expired' });
    assert.ok(Date.now() - started < 2_500, `answered after ${Date.now() - started} ms`);
  });
});

describe('QR poll slots', () => {
  it('caps per address and per request, each on its own, and gives a slot back once however often released', () => {
    const slots = new PollSlots({ perIp: 2, perRequest: 3 });
    const a = slots.take('ip1', 'r1');
    const b = slots.take('ip1', 'r2');
    assert.ok(a !== null && b !== null);
    assert.equal(slots.take('ip1', 'r3'), null, 'a third poll from one address');
    const c = slots.take('ip2', 'r1');
    const d = slots.take('ip3', 'r1');
    assert.ok(c !== null && d !== null);
    assert.equal(slots.take('ip4', 'r1'), null, 'a fourth poll of one request');
    a();
    a();
    assert.notEqual(slots.take('ip4', 'r1'), null, 'a released slot was not given back');
    assert.equal(slots.take('ip5', 'r1'), null, 'a double release gave two slots back');
    assert.notEqual(slots.take('ip1', 'r9'), null, 'the address got its released slot back');
    assert.equal(slots.take('ip1', 'r8'), null, 'the address is at its cap again');
  });
});

describe('QR scan and answer', () => {
  it('lets only the app scan, shows the requester, and gives the scanner a fresh window', async () => {
    const w = world();
    const created = await createLoginRequest(w.deps, requester);
    const web = await appSession(w, 'alice', 1);
    await refused(scanLoginRequest(w.deps, web, created.uuid, context), 'forbidden', /only the signed-in app/);
    await refused(answerLoginRequest(w.deps, web, created.uuid, true, context), 'forbidden', /only the signed-in app/);
    const scanner = await appSession(w, 'alice');
    w.clock.at += 30_000;
    const answer = await scanLoginRequest(w.deps, scanner, created.uuid, context);
    assert.deepEqual(answer, {
      status: 'scanned',
      requester: { device_name: 'Firefox', device_model: 'Firefox 140', ip: requester.ip, flag: 1, user_agent: 'Mozilla/5.0' },
    });
    const record = await stored(w, created.uuid);
    assert.equal(record.status, 'scanned');
    assert.equal(record.scanner_uid, 'alice');
    assert.equal(record.scanner_sid, scanner.sid);
    assert.equal(record.expires_at, T0 + 30_000 + TTL.request * 1000);
    // A repeat by the same session changes nothing.
    await scanLoginRequest(w.deps, scanner, created.uuid, context);
    assert.equal((await stored(w, created.uuid)).version, 2);
    assert.deepEqual(w.audit, [
      { type: 'qr_scan', uid: 'alice', sid: scanner.sid, result: 'ok', reason: null },
      { type: 'qr_scan', uid: 'alice', sid: scanner.sid, result: 'ok', reason: null },
    ]);
  });

  it('refuses a second account, a second session of the scanner, a lapsed request and an answered one', async () => {
    const w = world();
    const created = await createLoginRequest(w.deps, requester);
    const scanner = await appSession(w, 'alice');
    await scanLoginRequest(w.deps, scanner, created.uuid, context);
    await refused(scanLoginRequest(w.deps, await appSession(w, 'mallory'), created.uuid, context), 'conflict', /another account/);
    const second = { ...scanner, sid: 'another-sid' };
    await refused(scanLoginRequest(w.deps, second, created.uuid, context), 'conflict', /another device/);
    assert.deepEqual(w.audit.slice(1).map((e) => [e.type, e.result, e.reason]), [['qr_scan', 'fail', 'conflict'], ['qr_scan', 'fail', 'conflict']]);
    await answerLoginRequest(w.deps, scanner, created.uuid, false, context);
    await refused(scanLoginRequest(w.deps, scanner, created.uuid, context), 'expired', /expired or was already answered/);

    const late = await createLoginRequest(w.deps, requester);
    w.clock.at = late.expires_at;
    await refused(scanLoginRequest(w.deps, scanner, late.uuid, context), 'expired');

    const unknown = await refused(scanLoginRequest(w.deps, scanner, 'nope', context), 'not_found');
    assert.equal(unknown, undefined);
    assert.equal(w.audit.at(-1)?.reason, 'not_found');
  });

  it('records a failed scan as "error" when the store fails, and passes the failure on', async () => {
    const w = world();
    const created = await createLoginRequest(w.deps, requester);
    const scanner = await appSession(w, 'alice');
    const broken = new Proxy(w.kv, {
      get(target, prop) {
        if (prop === 'get') return async () => { throw new Error('store down'); };
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as Kv;
    await assert.rejects(scanLoginRequest({ ...w.deps, kv: broken }, scanner, created.uuid, context), /store down/);
    assert.deepEqual(w.audit.at(-1), { type: 'qr_scan', uid: 'alice', sid: scanner.sid, result: 'fail', reason: 'error' });
  });

  it('refuses a scan of an approved request, even by its scanner session, once it is no longer waiting', async () => {
    const w = world();
    const { created, scanner } = await approved(w);
    await refused(scanLoginRequest(w.deps, { ...scanner, uid: 'bob', sid: 'x' }, created.uuid, context), 'conflict');
    const record = await stored(w, created.uuid);
    // A request someone else scanned but which nobody holds (scanner cleared) must still not be re-scanned once answered.
    await w.kv.set(recordKey(created.uuid), JSON.stringify({ ...record, scanner_uid: null, scanner_sid: null }));
    await refused(scanLoginRequest(w.deps, scanner, created.uuid, context), 'expired');
  });

  it('approves once: a nonce, the password stamp, and the code TTL, from the scanning session only', async () => {
    const w = world();
    const created = await createLoginRequest(w.deps, requester);
    const scanner = await appSession(w, 'alice');
    await scanLoginRequest(w.deps, scanner, created.uuid, context);
    await refused(answerLoginRequest(w.deps, await appSession(w, 'bob'), created.uuid, true, context), 'forbidden', /only the app session that scanned/);
    await refused(answerLoginRequest(w.deps, { ...scanner, sid: 'other' }, created.uuid, true, context), 'forbidden');
    w.clock.at += 5_000;
    assert.deepEqual(await answerLoginRequest(w.deps, scanner, created.uuid, true, context), { status: 'authed' });
    const record = await stored(w, created.uuid);
    assert.equal(record.status, 'authed');
    assert.match(record.code_nonce ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.equal(record.password_stamp, createHash('sha256').update('hash-of-alice').digest('base64url'));
    assert.equal(record.expires_at, T0 + 5_000 + TTL.code * 1000);
    assert.deepEqual(w.audit.at(-1), { type: 'qr_grant', uid: 'alice', sid: scanner.sid, result: 'ok', reason: null });
    // The same answer again changes nothing; the other answer is refused.
    await answerLoginRequest(w.deps, scanner, created.uuid, true, context);
    assert.equal((await stored(w, created.uuid)).version, record.version);
    await refused(answerLoginRequest(w.deps, scanner, created.uuid, false, context), 'conflict', /already answered/);
    assert.deepEqual(w.audit.at(-1), { type: 'qr_reject', uid: 'alice', sid: scanner.sid, result: 'fail', reason: 'conflict' });
  });

  it('rejects at once: the request lapses now, with no nonce and no stamp', async () => {
    const w = world();
    const created = await createLoginRequest(w.deps, requester);
    const scanner = await appSession(w, 'alice');
    await scanLoginRequest(w.deps, scanner, created.uuid, context);
    w.clock.at += 7;
    assert.deepEqual(await answerLoginRequest(w.deps, scanner, created.uuid, false, context), { status: 'rejected' });
    const record = await stored(w, created.uuid);
    assert.equal(record.status, 'rejected');
    assert.equal(record.expires_at, T0 + 7);
    assert.equal(record.code_nonce, null);
    assert.equal(record.password_stamp, null);
  });

  it('refuses an answer on a lapsed request, on an unscanned one, and from a scanner whose account is gone', async () => {
    const w = world();
    const created = await createLoginRequest(w.deps, requester);
    const scanner = await appSession(w, 'alice');
    const record = await stored(w, created.uuid);
    await w.kv.set(recordKey(created.uuid), JSON.stringify({ ...record, scanner_uid: 'alice', scanner_sid: scanner.sid }));
    await refused(answerLoginRequest(w.deps, scanner, created.uuid, false, context), 'conflict', /already answered/);
    const other = await createLoginRequest(w.deps, requester);
    await scanLoginRequest(w.deps, scanner, other.uuid, context);
    w.clock.at = (await stored(w, other.uuid)).expires_at;
    await refused(answerLoginRequest(w.deps, scanner, other.uuid, false, context), 'expired', /expired or was already answered/);
    w.users.delete('alice');
    await refused(answerLoginRequest(w.deps, scanner, other.uuid, true, context), 'not_found', /account not found/);
  });
});

describe('QR approver', () => {
  it('stamps the password hash as SHA-256 base64url, and an account without a password as null', () => {
    assert.equal(passwordStamp(user('a', { passwordHash: 'x' })), createHash('sha256').update('x').digest('base64url'));
    assert.equal(passwordStamp(user('a', { passwordHash: null })), null);
  });

  it('counts the approver alive only while its own session record exists, is the scanner\'s and has not expired', async () => {
    const w = world();
    const scanner = await appSession(w, 'alice');
    const record = { scanner_uid: 'alice', scanner_sid: scanner.sid } as QrRecord;
    assert.equal(await approverAlive(w.deps, record), true);
    assert.equal(await approverAlive(w.deps, { ...record, scanner_sid: null }), false);
    assert.equal(await approverAlive(w.deps, { ...record, scanner_uid: null }), false);
    assert.equal(await approverAlive(w.deps, { ...record, scanner_uid: 'bob' }), false);
    assert.equal(await approverAlive(w.deps, { ...record, scanner_sid: 'nope' }), false);
    await w.kv.set(sessionKey('garbled'), 'not json');
    assert.equal(await approverAlive(w.deps, { ...record, scanner_sid: 'garbled' }), false);
    const clock = { now: () => scanner.expires_at };
    assert.equal(await approverAlive({ kv: w.kv, clock }, record), false, 'a session at its expiry is not alive');
    assert.equal(await approverAlive({ kv: w.kv, clock: { now: () => scanner.expires_at - 1 } }, record), true);
    const u = user('alice');
    assert.equal(await lapsedApproval(w.deps, { ...record, password_stamp: passwordStamp(u) }, u), null);
    assert.equal(await lapsedApproval(w.deps, { ...record, password_stamp: 'old' }, u), 'password_changed');
    assert.equal(await lapsedApproval(w.deps, { ...record, scanner_sid: 'nope', password_stamp: passwordStamp(u) }, u), 'approver_ended');
  });
});

describe('QR exchange', () => {
  it('trades the code once for a session on the requester\'s device, and consumes the request at that moment', async () => {
    const w = world();
    const { created, authCode } = await approved(w);
    w.clock.at += 1_000;
    const input = { uuid: created.uuid, authCode, pollSecret: created.poll_secret };
    const response = await exchangeAuthCode(w.deps, input, context);
    assert.ok('token' in response);
    assert.equal(response.uid, 'alice');
    assert.equal(response.device_flag, 1);
    const session = await w.sessions.validate(response.token);
    assert.ok(session !== null);
    assert.equal(session.device_id, 'browser-1');
    assert.equal(session.method, 'qr');
    const record = await stored(w, created.uuid);
    assert.equal(record.status, 'consumed');
    assert.equal(record.expires_at, T0 + 1_000);
    await refused(exchangeAuthCode(w.deps, input, context), 'expired', /already used/);
  });

  it('answers a wrong secret, a wrong code, an unknown uuid and an unapproved request with the same 404', async () => {
    const w = world();
    const { created, authCode } = await approved(w);
    const good = { uuid: created.uuid, authCode, pollSecret: created.poll_secret };
    await refused(exchangeAuthCode(w.deps, { ...good, pollSecret: 'wrong' }, context), 'not_found', /auth code not found/);
    await refused(exchangeAuthCode(w.deps, { ...good, authCode: 'wrong' }, context), 'not_found');
    await refused(exchangeAuthCode(w.deps, { ...good, uuid: 'nope' }, context), 'not_found');
    const waiting = await createLoginRequest(w.deps, requester);
    await refused(exchangeAuthCode(w.deps, { uuid: waiting.uuid, authCode, pollSecret: waiting.poll_secret }, context), 'not_found');
    // An approval from before codes were derived has no nonce: nothing the poll secret's holder can
    // compute (not even the code of a nonce spelt "null") may exchange it.
    const old = await stored(w, created.uuid);
    await w.kv.set(recordKey(created.uuid), JSON.stringify({ ...old, code_nonce: null }));
    const forged = deriveAuthCode(created.poll_secret, created.uuid, 'null');
    await refused(exchangeAuthCode(w.deps, { ...good, authCode: forged }, context), 'not_found');
    assert.deepEqual((await w.sessions.list('alice')).filter((x) => x.method === 'qr'), []);
    assert.equal((await stored(w, created.uuid)).status, 'authed');
  });

  it('refuses a code at the exact millisecond it lapses, and one whose request is no longer authed', async () => {
    const w = world();
    const { created, authCode } = await approved(w);
    const input = { uuid: created.uuid, authCode, pollSecret: created.poll_secret };
    const record = await stored(w, created.uuid);
    w.clock.at = record.expires_at;
    await refused(exchangeAuthCode(w.deps, input, context), 'expired', /has expired/);
    w.clock.at = T0;
    await w.kv.set(recordKey(created.uuid), JSON.stringify({ ...record, status: 'rejected' }));
    await refused(exchangeAuthCode(w.deps, input, context), 'expired', /has expired/);
    assert.deepEqual(await w.sessions.list('alice').then((s) => s.filter((x) => x.method === 'qr')), []);
  });

  it('gives no session to an account banned or deleted since the approval', async () => {
    const w = world();
    const { created, authCode } = await approved(w);
    w.users.set('alice', user('alice', { status: 'banned' } as Partial<User>));
    await refused(exchangeAuthCode(w.deps, { uuid: created.uuid, authCode, pollSecret: created.poll_secret }, context), 'account_disabled');
    assert.deepEqual(w.logins, [{ method: 'qr', result: 'disabled' }]);
    assert.deepEqual(w.audit.at(-1), { type: 'login', uid: 'alice', sid: null, result: 'fail', reason: 'account_disabled' });

    // A real ban also sweeps the sessions, the approver's among them: still "disabled", not "expired".
    const w3 = world();
    const third = await approved(w3, 'carol');
    w3.users.set('carol', user('carol', { status: 'banned' } as Partial<User>));
    await w3.sessions.revokeAll('carol', 'ban');
    await refused(exchangeAuthCode(w3.deps, { uuid: third.created.uuid, authCode: third.authCode, pollSecret: third.created.poll_secret }, context), 'account_disabled');
    assert.deepEqual(w3.audit.at(-1), { type: 'login', uid: 'carol', sid: null, result: 'fail', reason: 'account_disabled' });

    const w2 = world();
    const second = await approved(w2, 'bob');
    w2.users.delete('bob');
    await refused(exchangeAuthCode(w2.deps, { uuid: second.created.uuid, authCode: second.authCode, pollSecret: second.created.poll_secret }, context), 'not_found', /account not found/);
  });

  it('refuses a code whose approver has logged out, or whose password changed, before any session is issued', async () => {
    const w = world();
    const ended = await approved(w);
    await w.sessions.logout(ended.scanner);
    await refused(exchangeAuthCode(w.deps, { uuid: ended.created.uuid, authCode: ended.authCode, pollSecret: ended.created.poll_secret }, context), 'expired', /session that approved this login has ended/);
    assert.deepEqual(w.logins, [{ method: 'qr', result: 'fail' }]);
    assert.deepEqual(w.audit.at(-1), { type: 'login', uid: 'alice', sid: null, result: 'fail', reason: 'qr_approver_ended' });

    const changed = await approved(w, 'bob');
    w.users.set('bob', user('bob', { passwordHash: 'new' }));
    await refused(exchangeAuthCode(w.deps, { uuid: changed.created.uuid, authCode: changed.authCode, pollSecret: changed.created.poll_secret }, context), 'expired', /password changed since/);
    assert.deepEqual(w.audit.at(-1), { type: 'login', uid: 'bob', sid: null, result: 'fail', reason: 'qr_password_changed' });
    assert.deepEqual((await w.sessions.list('bob')).filter((s) => s.method === 'qr'), []);
  });

  it('ends the issued session when the approval lapses, or the account is banned, while the session is being issued', async () => {
    for (const [change, code_, reason, revoked] of [
      ['password', 'expired', 'qr_password_changed', 'password'],
      ['logout', 'expired', 'qr_approver_ended', 'aborted'],
      ['ban', 'account_disabled', 'account_disabled', 'ban'],
      ['delete', 'account_disabled', 'account_disabled', 'ban'],
    ] as const) {
      const w = world();
      const { created, scanner, authCode } = await approved(w);
      const ends: string[] = [];
      const issue = w.sessions.issue.bind(w.sessions);
      const revoke = w.sessions.revoke.bind(w.sessions);
      // The change lands after the exchange's first look and before its second: only the second sees it.
      w.sessions.issue = async (input) => {
        const issued = await issue(input);
        if (change === 'password') w.users.set('alice', user('alice', { passwordHash: 'new' }));
        if (change === 'logout') await w.sessions.logout(scanner);
        if (change === 'ban') w.users.set('alice', user('alice', { status: 'banned' } as Partial<User>));
        if (change === 'delete') w.users.delete('alice');
        return issued;
      };
      w.sessions.revoke = async (uid, sid, why) => { ends.push(`${sid}:${why}`); return revoke(uid, sid, why); };
      await refused(exchangeAuthCode(w.deps, { uuid: created.uuid, authCode, pollSecret: created.poll_secret }, context), code_);
      const issuedSid = w.audit.at(-1)?.sid;
      assert.ok(typeof issuedSid === 'string', `${change}: the refusal names no issued session`);
      assert.deepEqual(ends, [`${issuedSid}:${revoked}`], change);
      assert.deepEqual(w.audit.at(-1), { type: 'login', uid: 'alice', sid: issuedSid, result: 'fail', reason }, change);
      const disabled = change === 'ban' || change === 'delete';
      assert.deepEqual(w.logins.at(-1), { method: 'qr', result: disabled ? 'disabled' : 'fail' }, change);
      assert.equal(await w.kv.get(sessionKey(issuedSid)), null, `${change}: the issued session outlived the refusal`);
    }
  });
});
