/**
 * The token mirror into octo-server's Redis under a storm (docs/octo-compat.md §3): two latchkey
 * processes share one store and one account file, each keeping a private redis-server standing in
 * for octo-server's Redis in step, while logins (APP, Web, PC), logouts, revokes, revoke-others and
 * an admin's bans and unbans run concurrently on both. Checked:
 * - every `POST /v1/user/quit` answered 200 has left no `token:<t>` key, when it answers;
 * - once settled, no `token:<t>` (nor sid key) outlives its session, every live session has its key,
 *   with `uid@name@role` and a lifetime no longer than the session's, and no other key exists;
 * - after a pause longer than many retry intervals, still none of the ended tokens' keys is back.
 * Run twice: without an IM server (Web and PC multi-session), and with the WuKongIM double, where
 * compat.octo makes Web and PC one session each with the session token as the IM token
 * (docs/octo-compat.md §2, 8): then, once settled, no ended session's IM token is the one WuKongIM
 * holds for its flag.
 *
 * Env: OCTO_STORM_OPS (default 1000), OCTO_STORM_CONCURRENCY (32), OCTO_STORM_USERS (20), OCTO_STORM_SEED.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { call, type Answer } from '../support/server.ts';
import { skipUnlessRedisServer, startLatchkey, startRedisServer, type LatchkeyProcess, type RedisServerProcess } from '../support/processes.ts';
import { describeRun, runLatchkeyCli } from '../support/cli-run.ts';
import { prng, stormSize } from '../support/storm-model.ts';
import { WukongImDouble } from '../support/wukongim-double.ts';
import { MANAGER_TOKEN } from '../support/im-node.ts';

const { ops: OPS, concurrency: CONCURRENCY, users: USERS, seed: SEED } = stormSize('OCTO_STORM', { ops: 1000, concurrency: 32, users: 20 });
const PASSWORD = 'storm password';
const TOKEN_PREFIX = 'token:';
const SID_PREFIX = 'latchkey:octo-sid:';
const SESSION_TTL_SECONDS = 3600;
/** Longer than many retry intervals of the removal queue (100 ms, doubling to 400 ms). */
const PAUSE_MS = 2500;

interface Session {
  readonly user: User;
  readonly token: string;
  readonly sid: string;
  readonly flag: number;
  /** The IM token the login answered (with an IM server). */
  readonly imToken: string | undefined;
  /** Told ended by latchkey (a logout or revoke answered for it); the final check asks latchkey anyway. */
  ended: boolean;
}

interface User {
  readonly username: string;
  uid: string;
  readonly sessions: Session[];
}

for (const withIm of [false, true]) {
describe(`the octo token mirror under a storm over two nodes${withIm ? ', with WuKongIM' : ''}`, { skip: skipUnlessRedisServer() }, () => {
  const random = prng(SEED);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

  const dir = mkdtempSync(join(tmpdir(), 'latchkey-octo-storm-'));
  let store: RedisServerProcess | undefined;
  let octoRedis: RedisServerProcess | undefined;
  let octo: Redis;
  let double: WukongImDouble | undefined;
  const nodes: LatchkeyProcess[] = [];
  const users: User[] = [];
  let adminToken = '';
  const violations: string[] = [];
  const counts = { logins: 0, refusedLogins: 0, logouts: 0, logoutsOk: 0, revokes: 0, revokeOthers: 0, bans: 0, unavailable: 0 };
  let stormMs = 0;

  const node = () => pick(nodes);
  const tokenKey = (token: string) => `${TOKEN_PREFIX}${token}`;
  const live = (user: User) => user.sessions.filter((s) => !s.ended);

  /** Anything but these statuses is a violation; a 503 (a store call timed out on a loaded machine) is counted. */
  function expect(what: string, answer: Answer, allowed: readonly number[]): boolean {
    if (answer.status === 503) {
      counts.unavailable += 1;
      return false;
    }
    if (!allowed.includes(answer.status)) violations.push(`${what}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
    return allowed.includes(answer.status);
  }

  async function login(user: User): Promise<void> {
    const roll = random();
    const flag = roll < 0.4 ? 0 : roll < 0.7 ? 1 : 2;
    counts.logins += 1;
    const device = { device_id: `${user.username}-${flag}-${counts.logins}`, device_name: 'storm', device_model: `flag ${flag}` };
    const answer = await call(node(), 'POST', '/v1/user/login', { username: user.username, password: PASSWORD, flag, device });
    // 400 account_disabled: banned meanwhile (compat answers business errors as 400).
    if (answer.status === 400 && answer.body?.code === 'account_disabled') {
      counts.refusedLogins += 1;
      return;
    }
    if (!expect(`login ${user.username} flag ${flag}`, answer, [200])) return;
    // A new APP login replaces the previous APP session; the final check asks latchkey which ended.
    user.sessions.push({ user, token: answer.body.token, sid: answer.body.sid, flag, imToken: answer.body.im_token, ended: false });
  }

  async function logout(session: Session): Promise<void> {
    counts.logouts += 1;
    const answer = await call(node(), 'POST', '/v1/user/quit', undefined, session.token);
    // 401: it had already ended (replaced, revoked, banned).
    if (!expect(`quit ${session.sid}`, answer, [200, 401])) return;
    session.ended = true;
    if (answer.status !== 200) return;
    counts.logoutsOk += 1;
    // Answered 200: octo-server must not accept the token any more, from this moment on.
    if ((await octo.exists(tokenKey(session.token))) !== 0) violations.push(`quit of ${session.sid} answered 200 with its token key still in octo's Redis`);
  }

  async function revokeOne(caller: Session, target: Session): Promise<void> {
    counts.revokes += 1;
    const answer = await call(node(), 'DELETE', `/v1/user/sessions/${encodeURIComponent(target.sid)}`, undefined, caller.token);
    if (expect(`revoke ${target.sid}`, answer, [200, 401, 404]) && answer.status === 200) target.ended = true;
  }

  async function revokeOthers(caller: Session): Promise<void> {
    counts.revokeOthers += 1;
    const answer = await call(node(), 'POST', '/v1/user/sessions/revoke_others', undefined, caller.token);
    if (expect(`revoke_others ${caller.sid}`, answer, [200, 401]) && answer.status === 200) {
      for (const s of caller.user.sessions) if (s !== caller) s.ended = true;
    }
  }

  async function banAndUnban(user: User): Promise<void> {
    counts.bans += 1;
    const ban = await call(node(), 'PUT', `/v1/manager/users/${user.uid}/status`, { status: 'banned' }, adminToken);
    if (expect(`ban ${user.uid}`, ban, [200]) && ban.status === 200) for (const s of user.sessions) s.ended = true;
    await sleep(Math.floor(random() * 50));
    const unban = await call(node(), 'PUT', `/v1/manager/users/${user.uid}/status`, { status: 'active' }, adminToken);
    expect(`unban ${user.uid}`, unban, [200]);
  }

  async function oneOp(): Promise<void> {
    const user = pick(users);
    const held = live(user);
    const roll = random();
    if (roll < 0.45 || held.length === 0) return login(user);
    if (roll < 0.68) return logout(pick(held));
    if (roll < 0.83 && held.length >= 2) {
      const caller = pick(held);
      return revokeOne(caller, pick(held.filter((s) => s !== caller)));
    }
    if (roll < 0.9) return revokeOthers(pick(held));
    if (roll < 0.94) return banAndUnban(user);
    return login(user);
  }

  /** Whether latchkey holds the session live, asked on both nodes (they must agree). */
  async function liveAtLatchkey(session: Session): Promise<boolean> {
    const answers = await Promise.all(nodes.map((n) => call(n, 'GET', '/v1/user/current', undefined, session.token)));
    const statuses = answers.map((a) => a.status);
    if (statuses.some((s) => s !== statuses[0]) || (statuses[0] !== 200 && statuses[0] !== 401)) {
      violations.push(`session ${session.sid}: the nodes answer ${statuses.join(' and ')}`);
    }
    return statuses[0] === 200;
  }

  async function keysOf(redis: Redis, pattern: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const batch of redis.scanStream({ match: pattern, count: 500 })) keys.push(...(batch as string[]));
    return keys;
  }

  /** Every node's removal queue drained (latchkey's store), so nothing is still owed to octo's Redis. */
  async function untilQueueDrained(latchkeyStore: Redis): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const queues = await keysOf(latchkeyStore, '*octo-mirror-queue*');
      const sizes = await Promise.all(queues.map((key) => latchkeyStore.hlen(key)));
      if (sizes.every((n) => n === 0)) return;
      if (Date.now() > deadline) assert.fail(`octo mirror removals still queued after 20 s: ${sizes.join(', ')}`);
      await sleep(100);
    }
  }

  before(async () => {
    store = await startRedisServer();
    octoRedis = await startRedisServer();
    octo = new Redis(octoRedis.url, { maxRetriesPerRequest: 1 });
    if (withIm) double = await WukongImDouble.start({ managerToken: MANAGER_TOKEN });
    const config = {
      store: store.url,
      db: `sqlite:${join(dir, 'accounts.db')}`,
      session_ttl: SESSION_TTL_SECONDS,
      password: { memory_cost: 1024, time_cost: 1 },
      rate_limits: { login: { max: 1_000_000 }, register: { max: 1_000_000 } },
      login_throttle: { per_account_ip: 1000, per_account: 100_000 },
      compat: {
        octo: true,
        octo_redis: { url: octoRedis.url, token_prefix: TOKEN_PREFIX, sid_prefix: SID_PREFIX, retry_interval_ms: 100, retry_max_interval_ms: 400 },
      },
      ...(double === undefined ? {} : {
        im: { type: 'wukongim', wukongim: { api_url: double.url, manager_token: MANAGER_TOKEN, timeout_ms: 5000 }, quit_retry: { interval_ms: 100 } },
      }),
    };
    const configPath = join(dir, 'config.json');
    writeFileSync(configPath, JSON.stringify(config));
    // One after the other: the first one creates the account schema.
    nodes.push(await startLatchkey(config));
    nodes.push(await startLatchkey(config));

    const admin = await call(nodes[0] as LatchkeyProcess, 'POST', '/v1/user/register', { username: 'stormboss', password: PASSWORD, flag: 0 });
    assert.equal(admin.status, 200, JSON.stringify(admin.body));
    const promoted = await runLatchkeyCli(['user', 'role', admin.body.uid, 'admin', '--config', configPath]);
    assert.equal(promoted.code, 0, describeRun(promoted));
    adminToken = admin.body.token;

    for (let i = 0; i < USERS; i += 1) users.push({ username: `octostorm${i}`, uid: '', sessions: [] });
    await Promise.all(users.map(async (user) => {
      const registered = await call(node(), 'POST', '/v1/user/register', { username: user.username, password: PASSWORD, name: `Storm ${user.username}` });
      assert.equal(registered.status, 200, JSON.stringify(registered.body));
      user.uid = registered.body.uid;
      user.sessions.push({ user, token: registered.body.token, sid: registered.body.sid, flag: 0, imToken: registered.body.im_token, ended: false });
    }));

    const started = performance.now();
    let issued = 0;
    const worker = async () => {
      while (issued < OPS) {
        issued += 1;
        await oneOp();
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    stormMs = performance.now() - started;
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    octo?.disconnect();
    await double?.close();
    await Promise.all([store?.stop(), octoRedis?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it(`ran ~${OPS} operations within 60 s with no unexpected answer, and every logout answered 200 had removed its key`, () => {
    process.stdout.write(`# octo mirror storm (seed ${SEED}): ${JSON.stringify(counts)} in ${Math.round(stormMs)} ms\n`);
    assert.deepEqual(violations, []);
    assert.ok(stormMs <= 60_000, `the storm took ${Math.round(stormMs)} ms`);
    assert.ok(counts.logoutsOk >= OPS / 20, `only ${counts.logoutsOk} logouts answered 200`);
    assert.ok(counts.bans > 0 && counts.revokes > 0 && counts.revokeOthers > 0);
  });

  it('once settled, no token key outlives its session, every live session has its key, and nothing else is there', async () => {
    const latchkeyStore = new Redis((store as RedisServerProcess).url, { maxRetriesPerRequest: 1 });
    try {
      await untilQueueDrained(latchkeyStore);
    } finally {
      latchkeyStore.disconnect();
    }
    const sessions = users.flatMap((u) => u.sessions);
    const liveTokens = new Set<string>();
    let ended = 0;
    for (const session of sessions) {
      const isLive = await liveAtLatchkey(session);
      const [value, ttl, sidValue] = await Promise.all([
        octo.get(tokenKey(session.token)), octo.pttl(tokenKey(session.token)), octo.get(`${SID_PREFIX}${session.sid}`),
      ]);
      if (!isLive) {
        ended += 1;
        if (value !== null) violations.push(`ended session ${session.sid} (flag ${session.flag}) still has its token key: ${value}`);
        if (sidValue !== null) violations.push(`ended session ${session.sid} still has its sid key`);
        continue;
      }
      liveTokens.add(session.token);
      if (value === null || !value.startsWith(`${session.user.uid}@Storm ${session.user.username}@`)) {
        violations.push(`live session ${session.sid} has token key ${JSON.stringify(value)}`);
      }
      if (ttl <= 0 || ttl > SESSION_TTL_SECONDS * 1000) violations.push(`live session ${session.sid}'s key lives ${ttl} ms`);
    }
    if (double !== undefined) {
      // Live Web and PC sessions whose token WuKongIM does not hold: the availability cost of the
      // races docs/octo-compat.md §2, 8 names (reported, not a violation).
      const unheld = sessions.filter((s) => s.flag !== 0 && liveTokens.has(s.token) && double?.tokenOf(s.user.uid, s.flag) !== s.token).length;
      process.stdout.write(`# live Web/PC sessions WuKongIM does not hold the token of: ${unheld}\n`);
      // Ended: its IM token is not the one WuKongIM holds for its flag (Web, PC: the session token).
      for (const session of sessions) {
        if (liveTokens.has(session.token) || session.imToken === undefined) continue;
        if (double.tokenOf(session.user.uid, session.flag) === session.imToken) {
          violations.push(`ended session ${session.sid} (flag ${session.flag}): WuKongIM still holds its IM token`);
        }
      }
    }
    const stray = (await keysOf(octo, `${TOKEN_PREFIX}*`)).filter((key) => !liveTokens.has(key.slice(TOKEN_PREFIX.length)));
    // The admin's own session is the one live key the storm does not track.
    const adminKey = tokenKey(adminToken);
    assert.deepEqual(violations, []);
    assert.deepEqual(stray.filter((key) => key !== adminKey), [], 'keys of tokens no live session holds');
    assert.ok(ended > OPS / 10, `only ${ended} sessions ended`);
    assert.ok(liveTokens.size > 0);
  });

  it('after a pause, none of the removed keys has come back', async () => {
    await sleep(PAUSE_MS);
    const sessions = users.flatMap((u) => u.sessions);
    const back: string[] = [];
    for (const session of sessions) {
      if (await liveAtLatchkey(session)) continue;
      if ((await octo.exists(tokenKey(session.token), `${SID_PREFIX}${session.sid}`)) !== 0) back.push(session.sid);
    }
    assert.deepEqual(back, []);
    assert.deepEqual(violations, []);
  });
});
}
