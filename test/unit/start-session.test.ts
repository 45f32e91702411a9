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
import { KyselyOutbox, OutboxRows } from '../../src/adapters/db/outbox.ts';
import { parseWebhooksConfig } from '../../src/config/webhooks.ts';

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
  it('writes session.created with the device row, new the first time only; without a device, a failed write fails the login', async () => {
    const kv = new MemoryKv();
    const sessions = new SessionService({
      kv, clock: systemClock, random: cryptoRandom, policies: defaultDevicePolicies, ttlMs: 60_000, accountStatus: async () => 'active',
    });
    const reporting = await openAccountStore(`sqlite:${join(dir, 'reporting.db')}`);
    try {
      const targets = parseWebhooksConfig([{ url: 'https://hooks.example.com/x', secret: `whsec_${Buffer.alloc(32, 1).toString('base64')}`, events: ['*'] }]);
      const outbox = new KyselyOutbox(reporting.db, new OutboxRows(targets, systemClock, cryptoRandom));
      reporting.repo.useOutbox(new OutboxRows(targets, systemClock, cryptoRandom), () => {});
      const accounts = reporting.repo;
      const user = await accounts.createUser({ uid: 'u-reported', username: 'reported', name: 'Reported', passwordHash: null }, systemClock.now());
      const context = (deviceId: string): LoginContext => ({ ip: '127.0.0.1', userAgent: 'test', flag: 1, device: { device_id: deviceId, device_name: 'D', device_model: 'x' } });
      const deps = { sessions, accounts, events: outbox, audit: new AuditTrail(accounts, systemClock, createLogger('silent')), metrics: createMetrics(), clock: systemClock };

      const first = await startSession(deps, user, 'password', context('d'));
      await startSession(deps, user, 'code', context('d'));
      const rows = await reporting.db.selectFrom('webhook_outbox').select('body').orderBy('id').execute();
      const data = rows.map((r) => (JSON.parse(r.body) as { data: { sid: string; new_device: boolean; method: string } }).data);
      assert.deepEqual(data.map(({ sid, new_device, method }) => [sid === first.sid, new_device, method]), [[true, true, 'password'], [false, false, 'code']]);

      const failing = { enabled: true, emit: () => Promise.reject(new StoreUnavailableError('PostgreSQL: connection refused')) };
      const before = (await sessions.list(user.uid)).length;
      await assert.rejects(startSession({ ...deps, events: failing }, user, 'password', context('')), StoreUnavailableError);
      assert.equal((await sessions.list(user.uid)).length, before);
    } finally {
      await reporting.close();
    }
  });
});
