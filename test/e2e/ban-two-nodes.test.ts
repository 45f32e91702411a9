/**
 * A ban across two latchkey processes that share only their stores: an admin bans on node A, and
 * at once every session of the user is refused on node A and node B, logins are refused on both,
 * and every IM device is quit. The admin role comes from the account store on every call, so a
 * demotion with the CLI (a third process) is felt by the next call on either node.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REDIS_URL, skipUnless, uniquePrefix } from '../support/services.ts';
import { deleteRedisKeys } from '../support/redis.ts';
import { startLatchkey, type LatchkeyProcess } from '../support/processes.ts';
import { call } from '../support/server.ts';
import { describeRun, runLatchkeyCli } from '../support/cli-run.ts';
import { WukongImDouble } from '../support/wukongim-double.ts';
import { MANAGER_TOKEN } from '../support/im-node.ts';

const PASSWORD = 'correct horse battery';

function twoNodes(label: string, store: (dir: string) => Record<string, unknown>, cleanup: () => Promise<void> = async () => {}) {
  return () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-ban-'));
    const configPath = join(dir, 'config.json');
    let double: WukongImDouble;
    let nodeA: LatchkeyProcess;
    let nodeB: LatchkeyProcess;

    before(async () => {
      double = await WukongImDouble.start({ managerToken: MANAGER_TOKEN });
      const config = {
        ...store(dir),
        db: `sqlite:${join(dir, 'accounts.db')}`,
        password: { memory_cost: 1024, time_cost: 1 },
        rate_limits: { register: { max: 1000 }, login: { max: 1000 } },
        im: { type: 'wukongim', wukongim: { api_url: double.url, manager_token: MANAGER_TOKEN, timeout_ms: 2000 } },
      };
      writeFileSync(configPath, JSON.stringify(config));
      // One after the other: both would run the account database's migrations.
      nodeA = await startLatchkey(config);
      nodeB = await startLatchkey(config);
    });
    after(async () => {
      await Promise.all([nodeA?.stop(), nodeB?.stop()]);
      await double?.close();
      await cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    it(`${label}: a ban on node A refuses every session of the user on both nodes at once, and quits every IM device`, async () => {
      const admin = await call(nodeA, 'POST', '/v1/user/register', { username: `boss${label}`, password: PASSWORD, flag: 1 });
      assert.equal(admin.status, 201);
      const promoted = await runLatchkeyCli(['user', 'role', admin.body.uid, 'admin', '--config', configPath]);
      assert.equal(promoted.code, 0, describeRun(promoted));

      const name = `target${label}`;
      const registered = await call(nodeB, 'POST', '/v1/user/register', { username: name, password: PASSWORD, flag: 0 });
      const uid: string = registered.body.uid;
      const sessions = [registered.body.token];
      for (const [node, flag] of [[nodeA, 1], [nodeB, 1], [nodeA, 2]] as const) {
        const login = await call(node, 'POST', '/v1/user/login', { username: name, password: PASSWORD, flag });
        assert.equal(login.status, 200);
        sessions.push(login.body.token);
      }
      const web = await call(nodeA, 'GET', '/v1/user/im_token', undefined, sessions[1]);
      const connection = double.connect(uid, 1, web.body.im_token);
      for (const node of [nodeA, nodeB]) {
        for (const token of sessions) assert.equal((await call(node, 'GET', '/v1/user/current', undefined, token)).status, 200);
      }

      const ban = await call(nodeA, 'PUT', `/v1/manager/users/${uid}/status`, { status: 'banned' }, admin.body.token);
      assert.deepEqual(ban.body, { status: 200, revoked: 4, im: 'ok' });
      // No wait: validation reads the shared store on every request (docs/design.md §3.2, invariant 6).
      const answers = await Promise.all([nodeA, nodeB].flatMap((node) => sessions.map((token) => call(node, 'GET', '/v1/user/current', undefined, token))));
      assert.deepEqual(answers.map((a) => a.status), Array(8).fill(401));
      for (const node of [nodeA, nodeB]) {
        const login = await call(node, 'POST', '/v1/user/login', { username: name, password: PASSWORD, flag: 1 });
        assert.equal(login.body.code, 'account_disabled');
      }
      assert.deepEqual(double.callsTo('/user/device_quit').at(-1)?.body, { uid, device_flag: -1 });
      assert.equal(connection?.kickedBy, 'device_quit');
    });

    it(`${label}: demoting the admin with the CLI takes effect on their next call, on either node`, async () => {
      const login = await call(nodeB, 'POST', '/v1/user/login', { username: `boss${label}`, password: PASSWORD, flag: 1 });
      const token: string = login.body.token;
      assert.equal((await call(nodeB, 'GET', '/v1/manager/users', undefined, token)).status, 200);
      const demoted = await runLatchkeyCli(['user', 'role', login.body.uid, 'user', '--config', configPath]);
      assert.equal(demoted.code, 0, describeRun(demoted));
      for (const node of [nodeA, nodeB]) assert.equal((await call(node, 'GET', '/v1/manager/users', undefined, token)).status, 403);
    });
  };
}

describe('ban across two nodes (SQLite store)', twoNodes('sqlite', (dir) => ({ store: `sqlite:${join(dir, 'kv.db')}` })));

const redisPrefix = uniquePrefix('ban2');
describe('ban across two nodes (Redis store)', { skip: await skipUnless('redis') }, twoNodes(
  'redis',
  () => ({ store: REDIS_URL, store_prefix: redisPrefix }),
  () => deleteRedisKeys(redisPrefix),
));
