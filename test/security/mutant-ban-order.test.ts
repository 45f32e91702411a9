/**
 * Mutant "ban-sweep-first" (test/mutation/ci-mutants.ts): the production ban (setAccountStatus) reversed, sweeping the
 * sessions before it sets the status. A login that joins the index after the sweep and re-checks
 * the status before it is set then outlives the ban (invariant 5). The real function runs here,
 * on the real SQLite account store; only the order of the two racers is forced: the ban's status
 * write waits until the login has finished.
 *
 * And the other half of invariant 5 (mutant "ban-recheck-skipped"): a login that joins the index
 * only after the whole ban (status set, sweep done) must see the status when it re-checks it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import type { Kv } from '../../src/ports/kv.ts';
import { openAccountStore, type AccountStore } from '../../src/adapters/db/open.ts';
import type { AccountRepo } from '../../src/ports/accounts.ts';
import { setAccountStatus } from '../../src/core/accounts.ts';
import { SessionService } from '../../src/core/sessions/service.ts';
import { defaultDevicePolicies } from '../../src/core/sessions/policy.ts';
import { systemClock } from '../../src/ports/clock.ts';
import { cryptoRandom } from '../../src/ports/random.ts';

const WEB = 1;

describe('a ban racing a login, through the production setAccountStatus', () => {
  let dir = '';
  let store: AccountStore | undefined;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-ban-order-'));
    store = await openAccountStore(`sqlite:${join(dir, 'accounts.db')}`);
  });
  after(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ends the login whichever of the two writes the store first', async () => {
    assert.ok(store);
    const repo = store.repo;
    await repo.createUser({ uid: 'victim', username: 'victim', name: 'Victim', passwordHash: null }, systemClock.now());
    await repo.createUser({ uid: 'admin', username: 'admin', name: 'Admin', passwordHash: null, role: 'admin' }, systemClock.now());
    let loginDone: () => void = () => {};
    const loginFinished = new Promise<void>((resolve) => { loginDone = resolve; });
    // The ban's status write waits for the login: only the order of the ban's own two steps decides.
    const gated: AccountRepo = new Proxy(repo, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        if (prop === 'removeAccessKeepingAnAdmin' || prop === 'setStatus') {
          return async (...args: unknown[]) => {
            await loginFinished;
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return value.bind(target);
      },
    });
    const sessions = new SessionService({
      kv: new MemoryKv(), clock: systemClock, random: cryptoRandom, policies: defaultDevicePolicies, ttlMs: 60_000,
      accountStatus: async (uid) => (await repo.findByUid(uid))?.status ?? null,
    });
    const ban = setAccountStatus({ accounts: gated, sessions, clock: systemClock }, 'victim', 'banned');
    // Let the ban take its first step before the login starts.
    await new Promise((resolve) => setImmediate(resolve));
    const login = await sessions.issue({
      uid: 'victim', flag: WEB, device: { device_id: 'd', device_name: 'd', device_model: 'm' }, method: 'password', ip: '127.0.0.1', userAgent: 'test',
    }).finally(() => loginDone());
    await ban;
    assert.equal((await repo.findByUid('victim'))?.status, 'banned');
    assert.equal(await sessions.validate(login.token), null, 'the login outlived the ban');
  });

  it('a login that joins the index after the whole ban re-checks the status and ends itself', async () => {
    assert.ok(store);
    const repo = store.repo;
    await repo.createUser({ uid: 'late', username: 'late', name: 'Late', passwordHash: null }, systemClock.now());
    let banDone: () => void = () => {};
    const banFinished = new Promise<void>((resolve) => { banDone = resolve; });
    const memory = new MemoryKv();
    // The login's index join waits until the ban (status, then sweep) is over.
    const kv: Kv = new Proxy(memory, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        if (prop === 'hset') {
          return async (...args: unknown[]) => {
            await banFinished;
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return value.bind(target);
      },
    });
    const sessions = new SessionService({
      kv, clock: systemClock, random: cryptoRandom, policies: defaultDevicePolicies, ttlMs: 60_000,
      accountStatus: async (uid) => (await repo.findByUid(uid))?.status ?? null,
    });
    const login = sessions.issue({
      uid: 'late', flag: WEB, device: { device_id: 'd', device_name: 'd', device_model: 'm' }, method: 'password', ip: '127.0.0.1', userAgent: 'test',
    });
    const outcome = login.then((issued) => issued.token, (error: unknown) => error);
    await setAccountStatus({ accounts: repo, sessions, clock: systemClock }, 'late', 'banned').finally(() => banDone());
    const result = await outcome;
    assert.notEqual(typeof result, 'string', 'the login after the ban was answered with a session');
    assert.equal((result as { code?: string }).code, 'account_disabled');
    assert.deepEqual(await sessions.list('late'), []);
  });
});
