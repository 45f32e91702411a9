/**
 * The webhook outbox and its delivery worker on every account database (docs/design.md §3.6): the
 * lease makes a claim exclusive between parallel workers (two stores, two connections, one database),
 * only a user's oldest row is ever handed out, failures back off and free the row, a row past its
 * max_age is dropped with a metric, an expired lease frees a killed worker's rows, and account
 * changes write their events in their own transaction only when the change was made.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { openAccountStore, type AccountStore } from '../../src/adapters/db/open.ts';
import { KyselyOutbox, OutboxRows } from '../../src/adapters/db/outbox.ts';
import { KyselyIdentityRepo } from '../../src/adapters/db/identity-repo.ts';
import { IdentityTaken } from '../../src/ports/identities.ts';
import { parseWebhooksConfig, type WebhookTarget } from '../../src/config/webhooks.ts';
import { createMetrics } from '../../src/ops/metrics.ts';
import { backoffMs, createWebhookWorker } from '../../src/ops/webhook-worker.ts';
import type { DomainEvent } from '../../src/ports/events.ts';
import { cryptoRandom } from '../../src/ports/random.ts';
import { skipUnless } from '../support/services.ts';
import { startReceiver } from '../support/webhook-receiver.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';

const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

interface Backend {
  setUp(): Promise<string>;
  tearDown(): Promise<void>;
}

/** A receiver on 127.0.0.1:0 that answers what `answer` says and records what it accepted. */
async function receiver(answer: (n: number, body: { type: string; data: { uid: string; n: number } }) => number) {
  const accepted: { id: string; body: { type: string; data: { uid: string; n: number } } }[] = [];
  const attempts: typeof accepted = [];
  let calls = 0;
  const server: Server = createServer((request, response) => {
    let raw = '';
    request.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    request.on('end', () => {
      const headers = request.headers as Record<string, string>;
      new Webhook(SECRET).verify(raw, headers);
      const body = JSON.parse(raw) as { type: string; data: { uid: string; n: number } };
      const status = answer(calls++, body);
      attempts.push({ id: headers['webhook-id'] ?? '', body });
      if (status < 300) accepted.push({ id: headers['webhook-id'] ?? '', body });
      response.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return { url: `http://127.0.0.1:${port}/hook`, accepted, attempts, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

function targets(url: string, extra: Record<string, unknown> = {}): readonly WebhookTarget[] {
  return parseWebhooksConfig([{ url, secret: SECRET, events: ['*'], max_age_seconds: 60, timeout_ms: 2000, ...extra }]);
}

const event = (uid: string, n: number): DomainEvent => ({ type: 'user.created', data: { uid, n } });

function outboxConformance(backend: Backend): void {
  let url = '';
  let stores: AccountStore[] = [];
  // The real time: a receiver checks the signature's timestamp against its own clock.
  let now = Date.now();
  const clock = { now: () => now };

  before(async () => {
    url = await backend.setUp();
  });
  beforeEach(async () => {
    stores = [await openAccountStore(url), await openAccountStore(url)];
    const [store] = stores;
    await store!.db.deleteFrom('webhook_outbox').execute();
    now = Date.now();
  });
  after(async () => {
    await Promise.all(stores.map((store) => store.close()));
    await backend.tearDown();
  });

  const outboxOf = (store: AccountStore, list: readonly WebhookTarget[]) => new KyselyOutbox(store.db, new OutboxRows(list, clock, cryptoRandom));

  it('writes one row per interested webhook and nothing when none is interested', async () => {
    const list = parseWebhooksConfig([
      { url: 'https://a.example/hook', secret: SECRET, events: ['*'] },
      { url: 'https://b.example/hook', secret: SECRET, events: ['session.ended'] },
    ]);
    const outbox = outboxOf(stores[0]!, list);
    await outbox.emit([event('u1', 1), { type: 'session.ended', data: { uid: 'u1', sid: 's', reason: 'logout' } }]);
    const rows = await stores[0]!.db.selectFrom('webhook_outbox').selectAll().orderBy('id').execute();
    assert.deepEqual(rows.map((r) => [r.type, r.webhook]), [
      ['user.created', list[0]!.key], ['session.ended', list[0]!.key], ['session.ended', list[1]!.key],
    ]);
    // One event id per event, shared by the webhooks it goes to.
    assert.equal(rows[1]!.event_id, rows[2]!.event_id);
    assert.notEqual(rows[0]!.event_id, rows[1]!.event_id);
    assert.equal(outboxOf(stores[0]!, []).enabled, false);
    await outboxOf(stores[0]!, []).emit([event('u1', 2)]);
    assert.equal((await stores[0]!.db.selectFrom('webhook_outbox').selectAll().execute()).length, 3);
  });

  it('hands each row to one of several parallel workers, and only the oldest row of each user', async () => {
    const list = targets('https://a.example/hook');
    const [a, b] = stores.map((store) => outboxOf(store, list));
    for (let n = 0; n < 5; n++) await a!.emit(Array.from({ length: 20 }, (_, u) => event(`user${u}`, n)));
    const key = list[0]!.key;
    const claims = await Promise.all([a!, b!, a!, b!].map((outbox) => outbox.claim([key], now, 10_000, 15)));
    // A claimer that lost a race for a row gets fewer rows, never the same one: whatever was left is claimed next.
    claims.push(await a!.claim([key], now, 10_000, 100));
    const ids = claims.flat().map((row) => row.id);
    assert.equal(new Set(ids).size, ids.length, 'a row was claimed twice');
    const claimed = claims.flat();
    assert.equal(claimed.length, 20, 'one row per user, every user');
    assert.ok(claimed.every((row) => JSON.parse(row.body).data.n === 0), 'only the oldest row of each user');
    // Leased: nobody gets them, nor any later row of those users, until the lease ends.
    assert.deepEqual(await a!.claim([key], now + 9_999, 10_000, 100), []);
    // The worker holding them died: after the lease they are handed out again, the same rows.
    const again = await b!.claim([key], now + 10_000, 10_000, 100);
    assert.deepEqual(again.map((r) => r.id).sort(), [...ids].sort());
    // Delivered: the next row of that user becomes claimable.
    await a!.remove(again[0]!.id);
    const next = await a!.claim([key], now + 10_000, 10_000, 100);
    assert.equal(next.length, 1);
    assert.equal(next[0]!.uid, again[0]!.uid);
    assert.equal(JSON.parse(next[0]!.body).data.n, 1);
  });

  it('delivers every event in order per user through failures, signed, with a stable webhook-id', async () => {
    let failures = 0;
    const hook = await receiver((n) => (n % 3 === 0 ? (failures++, 500) : 204));
    try {
      const list = targets(hook.url);
      const metrics = createMetrics();
      const log = { warn: () => {}, error: () => {} };
      const [a, b] = stores.map((store) => outboxOf(store, list));
      for (let n = 0; n < 6; n++) await a!.emit(Array.from({ length: 8 }, (_, u) => event(`user${u}`, n)));
      const workers = [a!, b!].map((outbox) => createWebhookWorker(outbox, list, clock, metrics, log, { loop: false, batch: 5 }));
      // At least once: a row whose settling failed (a busy database) is sent again after its lease.
      const firsts = () => [...new Map(hook.accepted.map((d) => [d.id, d] as const)).values()];
      for (let round = 0; round < 100 && firsts().length < 48; round++) {
        await Promise.all(workers.map((worker) => worker.runOnce()));
        now += 2000;
      }
      assert.equal(firsts().length, 48);
      assert.ok(failures > 0);
      for (let u = 0; u < 8; u++) {
        const seen = firsts().filter((d) => d.body.data.uid === `user${u}`).map((d) => d.body.data.n);
        assert.deepEqual(seen, [0, 1, 2, 3, 4, 5], `user${u} in order`);
      }
      assert.equal((await a!.stats([list[0]!.key])).pending, 0);
      const idsOf = new Map<string, Set<string>>();
      for (const { id, body } of hook.attempts) idsOf.set(`${body.data.uid}/${body.data.n}`, (idsOf.get(`${body.data.uid}/${body.data.n}`) ?? new Set()).add(id));
      assert.ok([...idsOf.values()].every((ids) => ids.size === 1), 'every attempt of an event carries its one webhook-id');
      const delivered = await metrics.registry.getSingleMetricAsString('latchkey_webhook_delivered_total');
      assert.match(delivered, new RegExp(` ${hook.accepted.length}$`, 'm'));
      const failed = await metrics.registry.getSingleMetricAsString('latchkey_webhook_failed_total');
      assert.match(failed, new RegExp(` ${failures}$`, 'm'));
    } finally {
      await hook.close();
    }
  });

  it('backs off after a failure (with jitter), and drops an event past max_age with a metric and an error log', async () => {
    const hook = await receiver(() => 503);
    try {
      const list = targets(hook.url, { max_age_seconds: 10, retry_max_ms: 4000 });
      const metrics = createMetrics();
      const errors: Record<string, unknown>[] = [];
      const outbox = outboxOf(stores[0]!, list);
      await outbox.emit([event('lonely', 0), event('lonely', 1)]);
      const worker = createWebhookWorker(outbox, list, clock, metrics, { warn: () => {}, error: (o) => errors.push(o) }, { loop: false, jitter: () => 1 });
      const start = now;
      assert.equal(await worker.runOnce(), 1);
      let [row] = await stores[0]!.db.selectFrom('webhook_outbox').selectAll().orderBy('id').execute();
      assert.equal(row!.attempts, 1);
      assert.equal(row!.next_at, now + 1000);
      assert.equal(row!.leased_until, 0);
      assert.equal(await worker.runOnce(), 0, 'not before its next attempt');
      now += 1000;
      assert.equal(await worker.runOnce(), 1);
      [row] = await stores[0]!.db.selectFrom('webhook_outbox').selectAll().orderBy('id').execute();
      assert.equal(row!.next_at, now + 2000, 'the wait doubles');
      // Owed: two rows, the oldest written `now - start` ago.
      assert.match(await metrics.registry.getSingleMetricAsString('latchkey_webhook_pending'), /^latchkey_webhook_pending 2$/m);
      assert.match(await metrics.registry.getSingleMetricAsString('latchkey_webhook_lag_seconds'), /^latchkey_webhook_lag_seconds 1$/m);
      // Until the next wait would end past max_age: the row is dropped, and the next one of the user goes.
      for (let i = 0; i < 10 && errors.length === 0; i++) {
        now += 4000;
        await worker.runOnce();
      }
      assert.equal(errors.length, 1);
      assert.equal(errors[0]!.type, 'user.created');
      assert.ok(now - start <= 10_000 + 4000);
      const left = await stores[0]!.db.selectFrom('webhook_outbox').selectAll().execute();
      assert.deepEqual(left.map((r) => JSON.parse(r.body).data.n), [1]);
      assert.match(await metrics.registry.getSingleMetricAsString('latchkey_webhook_dropped_total'), / 1$/m);
      assert.deepEqual([backoffMs(1, 60_000, 0), backoffMs(3, 60_000, 0.5), backoffMs(20, 60_000, 1)], [500, 3000, 60_000]);
    } finally {
      await hook.close();
    }
  });

  it('stops at once mid-delivery and frees the row it held, no attempt counted', async () => {
    const hook = await startReceiver(() => 204, SECRET);
    const release = hook.stall();
    try {
      const list = targets(hook.url, { timeout_ms: 60_000 });
      const outbox = outboxOf(stores[0]!, list);
      const worker = createWebhookWorker(outbox, list, clock, createMetrics(), { warn: () => {}, error: () => {} }, { pollMs: 50 });
      await outbox.emit([event('stopper', 0)]);
      for (let i = 0; i < 100; i++) {
        const [row] = await stores[0]!.db.selectFrom('webhook_outbox').selectAll().execute();
        if (row !== undefined && row.leased_until > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const stopping = Date.now();
      await worker.stop();
      assert.ok(Date.now() - stopping < 2000, 'stop() waited for the receiver');
      const [row] = await stores[0]!.db.selectFrom('webhook_outbox').selectAll().execute();
      assert.deepEqual([row?.leased_until, row?.attempts], [0, 0]);
    } finally {
      release();
      await hook.close();
    }
  });

  it('writes an account change\'s events in its transaction, and only when the change was made', async () => {
    const store = stores[0]!;
    const rows = new OutboxRows(targets('https://a.example/hook'), clock, cryptoRandom);
    let written = 0;
    store.repo.useOutbox(rows, () => written++);
    const uid = `tx${now}`;
    await store.repo.createUser({ uid, username: uid, name: uid, passwordHash: null }, now, [{ type: 'user.created', data: { uid } }]);
    await assert.rejects(store.repo.createUser({ uid, username: uid, name: uid, passwordHash: null }, now, [{ type: 'user.created', data: { uid } }]));
    assert.equal(await store.repo.setStatus('nobody', 'banned', now, [{ type: 'user.banned', data: { uid: 'nobody' } }]), false);
    assert.equal(await store.repo.setRole(uid, 'admin', now, [{ type: 'user.role_changed', data: { uid, role: 'admin' } }]), true);
    assert.equal(await store.repo.removeAccessKeepingAnAdmin(uid, { status: 'banned' }, now, [{ type: 'user.banned', data: { uid } }]), 'last_admin');
    assert.equal(await store.repo.updatePasswordHash(uid, 'wrong', 'h', now, [{ type: 'user.password_changed', data: { uid } }]), false);
    assert.equal(await store.repo.updatePasswordHash(uid, null, 'h', now, [{ type: 'user.password_changed', data: { uid } }]), true);
    const types = (await store.db.selectFrom('webhook_outbox').select('type').orderBy('id').execute()).map((r) => r.type);
    assert.deepEqual(types, ['user.created', 'user.role_changed', 'user.password_changed']);
    assert.equal(written, 3);

    // An SSO account and its identity: the event in the same transaction, none when the identity was taken.
    const identities = new KyselyIdentityRepo(store.db, { rows, written: () => written++ });
    const sso = (id: string) => ({ uid: id, username: id, name: id, passwordHash: null });
    const ssoEvent = (id: string): DomainEvent[] => [{ type: 'user.created', data: { uid: id, method: 'oidc' } }];
    await identities.createWithAccount(sso(`${uid}a`), { id: `${uid}i1`, issuer: 'https://idp.example', subject: uid, uid: `${uid}a` }, now, ssoEvent(`${uid}a`));
    await assert.rejects(
      identities.createWithAccount(sso(`${uid}b`), { id: `${uid}i2`, issuer: 'https://idp.example', subject: uid, uid: `${uid}b` }, now, ssoEvent(`${uid}b`)),
      IdentityTaken,
    );
    const ssoRows = await store.db.selectFrom('webhook_outbox').select('uid').where('type', '=', 'user.created').orderBy('id').execute();
    assert.deepEqual(ssoRows.map((r) => r.uid), [uid, `${uid}a`]);
    assert.equal(written, 4);
  });
}

describe('webhook outbox on SQLite', () => {
  let dir = '';
  outboxConformance({
    async setUp() {
      dir = mkdtempSync(join(tmpdir(), 'latchkey-outbox-'));
      return `sqlite:${join(dir, 'accounts.db')}`;
    },
    async tearDown() {
      rmSync(dir, { recursive: true, force: true });
    },
  });
});

describe('webhook outbox on PostgreSQL', { skip: await skipUnless('postgres') }, () => {
  let database: TestDatabase | undefined;
  outboxConformance({
    async setUp() {
      database = await createTestDatabase();
      return database.url;
    },
    async tearDown() {
      await database?.drop();
    },
  });
});
