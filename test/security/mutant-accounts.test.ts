/**
 * Kills the Stryker survivors of src/core/accounts.ts (test/mutation/report.md), on the real SQLite
 * account store: only a ban sweeps the sessions, and says so in their end reason; a promotion is
 * never blocked by the last-admin rule; the last admin cannot be banned but through the CLI's
 * override; and a missing account is a clear "user not found", never a silent success.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { openAccountStore, type AccountStore } from '../../src/adapters/db/open.ts';
import type { AccountRepo, Role } from '../../src/ports/accounts.ts';
import { setAccountStatus, setRole } from '../../src/core/accounts.ts';
import { SessionService } from '../../src/core/sessions/service.ts';
import { defaultDevicePolicies } from '../../src/core/sessions/policy.ts';
import type { RevokeReason } from '../../src/core/sessions/record.ts';
import { systemClock } from '../../src/ports/clock.ts';
import { cryptoRandom } from '../../src/ports/random.ts';

const dirs: string[] = [];
const stores: AccountStore[] = [];
after(async () => {
  for (const store of stores) await store.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function world(users: ReadonlyArray<readonly [string, Role]>) {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-mutant-accounts-'));
  dirs.push(dir);
  const store = await openAccountStore(`sqlite:${join(dir, 'accounts.db')}`);
  stores.push(store);
  for (const [uid, role] of users) await store.repo.createUser({ uid, username: uid, name: uid, passwordHash: null, role }, systemClock.now());
  const ended: RevokeReason[] = [];
  const sessions = new SessionService({
    kv: new MemoryKv(), clock: systemClock, random: cryptoRandom, policies: defaultDevicePolicies, ttlMs: 60_000,
    accountStatus: async (uid) => (await store.repo.findByUid(uid))?.status ?? null,
    onEnded: (_session, reason) => { ended.push(reason); },
  });
  const login = (uid: string) => sessions.issue({
    uid, flag: 1, device: { device_id: 'd', device_name: 'd', device_model: 'm' }, method: 'password', ip: '127.0.0.1', userAgent: 'test',
  });
  return { repo: store.repo, sessions, ended, login, deps: { accounts: store.repo, sessions, clock: systemClock } };
}

const userNotFound = (error: unknown): boolean => {
  const e = error as { code?: string; message?: string };
  return e.code === 'not_found' && e.message === 'user not found';
};

describe('account status and role changes (core/accounts.ts)', () => {
  it('a ban ends the sessions with reason "ban"; setting "active" ends none', async () => {
    const w = await world([['admin', 'admin'], ['u1', 'user'], ['u2', 'user']]);
    const active = await w.login('u2');
    assert.equal(await setAccountStatus(w.deps, 'u2', 'active'), 0);
    assert.ok(await w.sessions.validate(active.token), 'setting an active account active ended its session');
    await w.login('u1');
    assert.equal(await setAccountStatus(w.deps, 'u1', 'banned'), 1);
    assert.deepEqual(w.ended, ['ban']);
  });

  it('promotes a user to admin even when no active admin exists yet, and re-promotes the only admin', async () => {
    const w = await world([['first', 'user']]);
    await setRole(w.deps, 'first', 'admin');
    assert.equal((await w.repo.findByUid('first'))?.role, 'admin');
    // Making the last admin an admin again is no removal of access: it must not meet the last-admin rule.
    await setRole(w.deps, 'first', 'admin');
  });

  it('refuses to ban or demote the last admin, naming the uid field', async () => {
    const w = await world([['only', 'admin']]);
    const lastAdmin = (error: unknown): boolean => {
      const e = error as { code?: string; details?: Record<string, unknown> };
      return e.code === 'conflict' && e.details?.field === 'uid';
    };
    await assert.rejects(setAccountStatus(w.deps, 'only', 'banned'), lastAdmin);
    await assert.rejects(setRole(w.deps, 'only', 'user'), lastAdmin);
  });

  it('an unknown account is "user not found" for every change', async () => {
    const w = await world([['admin', 'admin']]);
    await assert.rejects(setAccountStatus(w.deps, 'ghost', 'banned'), userNotFound);
    await assert.rejects(setAccountStatus(w.deps, 'ghost', 'active'), userNotFound);
    await assert.rejects(setRole(w.deps, 'ghost', 'admin'), userNotFound);
    await assert.rejects(setRole(w.deps, 'ghost', 'user'), userNotFound);
  });

  it('the CLI override on an account deleted meanwhile: not found, and no "last admin" notice', async () => {
    const w = await world([['only', 'admin']]);
    // The account vanishes between the last-admin check and the write.
    const vanishing: AccountRepo = new Proxy(w.repo, {
      get(target, prop) {
        if (prop === 'setStatus' || prop === 'setRole') return async () => false;
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    let notified = 0;
    const options = { allowLastAdmin: () => { notified += 1; } };
    await assert.rejects(setAccountStatus({ ...w.deps, accounts: vanishing }, 'only', 'banned', options), userNotFound);
    await assert.rejects(setRole({ ...w.deps, accounts: vanishing }, 'only', 'user', options), userNotFound);
    assert.equal(notified, 0);
  });
});
