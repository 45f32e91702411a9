/**
 * Webhook storm (docs/design.md §3.6): two latchkey processes sharing one Redis and one PostgreSQL
 * run ~2,000 operations of 40 users (logins on every flag, logouts, password changes, bans and
 * unbans). The receiver fails its first 3 deliveries and is down (connection refused) for 10 s;
 * one node is killed with SIGKILL mid-storm. Afterwards, from the surviving node alone:
 * - every session a login answered for has its session.created, every session no longer live has
 *   its session.ended (except those a request cut off by the kill may have ended: see below);
 * - every delivery's signature verifies (standardwebhooks);
 * - each user's events arrived in order (event time never goes back, a session's end after its
 *   start), and a repeated delivery is the same event under the same webhook-id.
 *
 * A request the kill cut off may have ended sessions without its event being written (the node died
 * between ending them and writing the outbox, docs/design.md §3.6): for the user of such a request,
 * sessions created before it are not required to have a session.ended.
 *
 * Env: WEBHOOK_STORM_OPS (default 2000), WEBHOOK_STORM_USERS (40), WEBHOOK_STORM_SEED.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeRun, runLatchkeyCli } from '../support/cli-run.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { startLatchkey, type LatchkeyProcess } from '../support/processes.ts';
import { deleteRedisKeys } from '../support/redis.ts';
import { call, type Answer } from '../support/server.ts';
import { REDIS_URL, skipUnless, uniquePrefix } from '../support/services.ts';
import { prng, stormSize } from '../support/storm-model.ts';
import { startReceiver, TEST_WEBHOOK_SECRET, type Delivery, type Receiver } from '../support/webhook-receiver.ts';

const { ops: OPS, users: USERS, seed: SEED } = stormSize('WEBHOOK_STORM', { ops: 2000, concurrency: 40, users: 40 });
const PASSWORDS = ['storm password one', 'storm password two'];

interface UserState {
  readonly name: string;
  uid: string;
  password: number;
  /** Tokens of sessions this script holds, by sid. */
  readonly held: Map<string, string>;
  /** Every sid a login answered 200 for, with the op number it was created at. */
  readonly created: Map<string, number>;
  /** The op number of a request the kill cut off (sessions created before it may have ended unreported). */
  cutAt: number;
}

const skip = (await skipUnless('redis')) || (await skipUnless('postgres'));

describe('webhook storm: two nodes, one killed, a failing then absent receiver', { skip }, () => {
  const random = prng(SEED);
  const prefix = uniquePrefix('whstorm');
  let dir = '';
  let database: TestDatabase;
  let receiver: Receiver;
  let nodeA: LatchkeyProcess;
  let nodeB: LatchkeyProcess;
  let bKilled = false;
  let adminToken = '';
  const users: UserState[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-whstorm-'));
    database = await createTestDatabase();
    receiver = await startReceiver((n) => (n < 3 ? 500 : 204), TEST_WEBHOOK_SECRET, 30);
    const config = {
      store: REDIS_URL, store_prefix: prefix, db: database.url,
      password: { memory_cost: 1024, time_cost: 1 },
      rate_limits: { register: { max: 100_000 }, login: { max: 100_000 } },
      webhooks: [{ url: receiver.url, secret: TEST_WEBHOOK_SECRET, events: ['*'], max_age_seconds: 600, timeout_ms: 2000, retry_max_ms: 2000 }],
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, data_dir: dir }));
    nodeA = await startLatchkey(config);
    nodeB = await startLatchkey(config);
  });
  after(async () => {
    await Promise.all([nodeA?.stop(), nodeB?.stop()]);
    await receiver?.close();
    await database?.drop();
    await deleteRedisKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const someNode = () => (bKilled ? nodeA : pick([nodeA, nodeB]));

  it('delivers every event, signed, in order per user, through failures, an outage and a killed node', async () => {
    const started = Date.now();
    // The admin: registered, then promoted by the command line.
    const admin = await call(nodeA, 'POST', '/v1/user/register', { username: 'stormboss', password: PASSWORDS[0], flag: 2 });
    assert.equal(admin.status, 201);
    const promoted = await runLatchkeyCli(['user', 'role', admin.body.uid, 'admin', '--config', join(dir, 'config.json')]);
    assert.equal(promoted.code, 0, describeRun(promoted));
    adminToken = admin.body.token;

    for (let u = 0; u < USERS; u++) {
      users.push({ name: `storm${u}x${process.pid}`, uid: '', password: 0, held: new Map(), created: new Map(), cutAt: -1 });
    }
    let opNumber = 0;
    let killedAt = 0;
    let bOps = 0;
    const surprises: string[] = [];

    /** One request on one node; null when the node was killed under it. */
    const attempt = async (user: UserState, node: LatchkeyProcess, method: string, path: string, body?: unknown, token?: string): Promise<Answer | null> => {
      const at = opNumber;
      try {
        return await call(node, method, path, body, token);
      } catch (error) {
        if (node === nodeB && bKilled) {
          user.cutAt = Math.max(user.cutAt, at);
          return null;
        }
        throw error;
      }
    };

    const login = async (user: UserState, node: LatchkeyProcess, register: boolean): Promise<void> => {
      const flag = pick([0, 0, 1, 1, 2]);
      const device = { device_id: `d${Math.floor(random() * 4)}`, device_name: 'n', device_model: 'm' };
      const answer = register
        ? await attempt(user, node, 'POST', '/v1/user/register', { username: user.name, password: PASSWORDS[0], flag, device })
        : await attempt(user, node, 'POST', '/v1/user/login', { username: user.name, password: PASSWORDS[user.password], flag, device });
      if (answer === null) return;
      if (answer.status !== 200 && answer.status !== 201) {
        surprises.push(`${register ? 'register' : 'login'} ${answer.status} ${JSON.stringify(answer.body)}`);
        return;
      }
      if (register) user.uid = answer.body.uid;
      user.held.set(answer.body.sid, answer.body.token);
      user.created.set(answer.body.sid, opNumber);
    };

    const step = async (user: UserState): Promise<void> => {
      opNumber += 1;
      const node = someNode();
      if (node === nodeB) bOps += 1;
      const roll = random();
      const held = [...user.held.entries()];
      if (held.length === 0 || roll < 0.45) return login(user, node, false);
      const [sid, token] = pick(held);
      if (roll < 0.8) {
        const answer = await attempt(user, node, 'POST', '/v1/user/quit', undefined, token);
        user.held.delete(sid);
        if (answer !== null && answer.status !== 200 && answer.status !== 401) surprises.push(`quit ${answer.status}`);
        return;
      }
      if (roll < 0.9) {
        // On node A only (never killed): the script must know which password is current.
        const next = 1 - user.password;
        const answer = await attempt(user, nodeA, 'PUT', '/v1/user/updatepassword', { password: PASSWORDS[user.password], new_password: PASSWORDS[next] }, token);
        if (answer?.status === 200) {
          user.password = next;
          for (const other of [...user.held.keys()]) if (other !== sid) user.held.delete(other);
        } else if (answer !== null && answer.status !== 401) {
          surprises.push(`updatepassword ${answer.status}`);
        }
        if (answer?.status === 401) user.held.delete(sid);
        return;
      }
      // Banned and unbanned by the admin: every session ends.
      const ban = await attempt(user, node, 'PUT', `/v1/manager/users/${user.uid}/status`, { status: 'banned' }, adminToken);
      user.held.clear();
      if (ban === null) {
        // Cut off: the ban may or may not have landed; unban on the survivor either way.
        await attempt(user, nodeA, 'PUT', `/v1/manager/users/${user.uid}/status`, { status: 'active' }, adminToken);
        return;
      }
      if (ban.status !== 200) surprises.push(`ban ${ban.status}`);
      const unban = await attempt(user, node, 'PUT', `/v1/manager/users/${user.uid}/status`, { status: 'active' }, adminToken);
      if (unban === null) await attempt(user, nodeA, 'PUT', `/v1/manager/users/${user.uid}/status`, { status: 'active' }, adminToken);
      else if (unban.status !== 200) surprises.push(`unban ${unban.status}`);
    };

    // The receiver goes away for 10 s early in the storm. Node B is killed once it is back (so
    // deliveries are in flight: each answer takes 30 ms) and half the operations are done; if the
    // operations outrun the outage, they wait for its end at 85%, so some still run after the kill.
    let outageOver = false;
    const outage = (async () => {
      await sleep(500);
      await receiver.down();
      await sleep(10_000);
      await receiver.up();
      await sleep(200);
      outageOver = true;
    })();
    const perUser = Math.ceil(OPS / USERS);
    await Promise.all(users.map(async (user) => {
      await login(user, someNode(), true);
      if (user.uid === '') {
        // Registration cut off by the kill: register again on the survivor (the username may be taken).
        await login(user, nodeA, true);
      }
      for (let i = 1; i < perUser; i++) {
        if (!bKilled && !outageOver && opNumber >= OPS * 0.85) await outage;
        if (!bKilled && outageOver && opNumber >= OPS * 0.5) {
          // From here on operations go to node A. Both nodes' deliveries pile up in flight, then
          // node B dies with its share of them.
          bKilled = true;
          killedAt = opNumber;
          const release = receiver.stall();
          await sleep(1000);
          process.kill(nodeB.pid, 'SIGKILL');
          await sleep(500);
          release();
        }
        await step(user);
      }
    }));
    await outage;
    assert.ok(bKilled && bOps > 100 && opNumber - killedAt > OPS * 0.1, `node B took ${bOps} operations, left at ${killedAt} of ${opNumber}`);
    assert.deepEqual(surprises, []);
    const stormMs = Date.now() - started;

    // Every registered user and their live sessions, from the survivor.
    const live = new Map<string, Set<string>>();
    for (const user of users) {
      assert.notEqual(user.uid, '', `${user.name} never registered`);
      const listed = await call(nodeA, 'GET', `/v1/manager/users/${user.uid}/sessions`, undefined, adminToken);
      assert.equal(listed.status, 200);
      live.set(user.uid, new Set((listed.body.sessions as { sid: string }[]).map((s) => s.sid)));
    }

    // Wait until every expected event has arrived.
    const expected = (accepted: Delivery[]) => {
      const created = new Set<string>();
      const ended = new Set<string>();
      for (const d of accepted) (d.type === 'session.created' ? created : d.type === 'session.ended' ? ended : new Set()).add(d.data.sid);
      return users.every((user) => [...user.created.keys()].every((sid) => created.has(sid)
        && (live.get(user.uid)!.has(sid) || ended.has(sid) || user.created.get(sid)! < user.cutAt)));
    };
    await receiver.until(expected, 45_000);

    assert.deepEqual(receiver.badSignatures, [], 'every signature verifies');
    const accepted = receiver.accepted();
    // A repeated delivery is the same event: same id, same body.
    const byId = new Map<string, Delivery>();
    for (const d of accepted) {
      const first = byId.get(d.id);
      if (first === undefined) byId.set(d.id, d);
      else assert.deepEqual({ ...d, status: 0 }, { ...first, status: 0 }, `webhook-id ${d.id} carried two different events`);
    }
    // Per user, in first-arrival order: event time never goes back; a session ends after it starts.
    const firsts = [...byId.values()];
    for (const user of [...users, { uid: admin.body.uid as string }]) {
      const mine = firsts.filter((d) => d.data.uid === user.uid);
      for (let i = 1; i < mine.length; i++) {
        const [before, now] = [mine[i - 1]!, mine[i]!];
        // The sessions one ban or password change ends are ended in parallel, so their session.ended
        // events are written concurrently and have no order among themselves; any other pair must be in order.
        const concurrentEnds = before.type === 'session.ended' && now.type === 'session.ended' && before.at - now.at <= 100;
        assert.ok(now.at >= before.at || concurrentEnds, `${user.uid}: ${now.type} at ${now.at} arrived after ${before.type} at ${before.at}`);
      }
      const startedAt = new Map<string, number>();
      mine.forEach((d, i) => {
        if (d.type === 'session.created') startedAt.set(d.data.sid, i);
        if (d.type === 'session.ended' && startedAt.has(d.data.sid) === false) {
          // Only a session whose login was cut off (its created event never written) may end unannounced.
          assert.ok(!users.some((u) => u.created.has(d.data.sid)), `${d.data.sid} ended before it was created`);
        }
      });
    }
    const types = new Set(firsts.map((d) => d.type));
    for (const type of ['user.created', 'session.created', 'session.ended', 'user.banned', 'user.unbanned', 'user.password_changed', 'user.role_changed']) {
      assert.ok(types.has(type), `no ${type} in the storm`);
    }
    const duplicates = accepted.length - byId.size;
    process.stdout.write(`# webhook storm: ${opNumber} ops in ${stormMs} ms (${bOps} on the killed node), ${byId.size} events, `
      + `${duplicates} duplicate deliveries, ${receiver.deliveries.length - accepted.length} refused, seed ${SEED}, all in ${Date.now() - started} ms\n`);
  });
});
