import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openAccountStore } from '../../src/adapters/db/open.ts';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { SessionService } from '../../src/core/sessions/service.ts';
import { defaultDevicePolicies } from '../../src/core/sessions/policy.ts';
import { startSession, type LoginContext } from '../../src/flows/start-session.ts';
import { AuditTrail } from '../../src/ops/audit.ts';
import { createMetrics } from '../../src/ops/metrics.ts';
import { createLogger } from '../../src/logger.ts';
import { systemClock } from '../../src/ports/clock.ts';
import { cryptoRandom } from '../../src/ports/random.ts';
import { StoreUnavailableError } from '../../src/ports/errors.ts';
import type { AccountRepo } from '../../src/ports/accounts.ts';

describe('a login whose account store fails after its session was written', () => {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-start-session-'));
  let store: Awaited<ReturnType<typeof openAccountStore>>;

  before(async () => {
    store = await openAccountStore(`sqlite:${join(dir, 'accounts.db')}`);
  });

  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('fails, and leaves no session behind in the list or the store', async () => {
    // The real repository, except that recording the device fails as if PostgreSQL had gone away.
    const accounts: AccountRepo = new Proxy(store.repo, {
      get(target, property) {
        if (property === 'upsertDevice') return () => Promise.reject(new StoreUnavailableError('PostgreSQL: connection refused'));
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const kv = new MemoryKv();
    const sessions = new SessionService({
      kv, clock: systemClock, random: cryptoRandom, policies: defaultDevicePolicies, ttlMs: 60_000, accountStatus: async () => 'active',
    });
    const user = await accounts.createUser({ uid: 'u-partial', username: 'partial', name: 'Partial', passwordHash: null }, systemClock.now());
    const context: LoginContext = {
      ip: '127.0.0.1', userAgent: 'test', flag: 1, device: { device_id: 'laptop', device_name: 'Laptop', device_model: 'x' },
    };
    const deps = { sessions, accounts, audit: new AuditTrail(accounts, systemClock, createLogger('silent')), metrics: createMetrics(), clock: systemClock };

    await assert.rejects(startSession(deps, user, 'password', context), StoreUnavailableError);
    assert.deepEqual(await sessions.list(user.uid), []);
    assert.deepEqual(kv.keys().filter((key) => key.startsWith('sess:')), []);
  });
});
