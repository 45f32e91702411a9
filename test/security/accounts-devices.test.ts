/**
 * Device rows do not pile up: a login writes one per device_id it names, and before pruning nothing
 * ever deleted one (40 rows for 10 live sessions).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { call } from '../support/server.ts';
import { startCodeTestServer, type CodeTestServer } from '../support/codes.ts';
import { DEVICE_HISTORY, DEVICE_PRUNE_LOCK_KEY, pruneDevices } from '../../src/ops/device-pruner.ts';

const PASSWORD = 'correct horse battery';
const DAY = 86_400_000;

describe('device rows are bounded', () => {
  let server: CodeTestServer;
  before(async () => {
    // Ten logins of one account at once from one address: past the login throttle's per-address
    // budget of attempts in flight (test/security/throttle-login.test.ts), so that is raised here.
    server = await startCodeTestServer({ login_throttle: { per_account_ip: 1000 } });
  });
  after(async () => {
    await server.stop();
  });

  it('device rows stay bounded: live devices plus a short history, whatever device ids logins send', async () => {
    const registered = await call(server, 'POST', '/v1/user/register', { username: 'manydevices', password: PASSWORD, flag: 0 });
    assert.equal(registered.status, 201);
    const uid: string = registered.body.uid;
    const login = (i: number) => call(server, 'POST', '/v1/user/login', {
      username: 'manydevices', password: PASSWORD, flag: 1, device: { device_id: `browser-${i}`, device_name: `Browser ${i}`, device_model: 'test' },
    });
    for (let batch = 0; batch < 4; batch++) {
      const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => login(batch * 10 + i)));
      assert.ok(answers.every((a) => a.status === 200), JSON.stringify(answers.map((a) => a.body)));
      server.clock.advance(1000);
    }
    const liveDevices = new Set((await server.runtime.sessions.list(uid)).map((s) => s.device_id).filter((id) => id !== ''));
    assert.ok(liveDevices.size >= 10 && liveDevices.size < 40, `live devices: ${liveDevices.size}`);
    assert.equal((await server.runtime.accounts.listDevices(uid)).length, 40);

    server.clock.advance(5 * 60_000);
    await server.runtime.kv.del(DEVICE_PRUNE_LOCK_KEY);
    const pruned = await pruneDevices(server.runtime);
    assert.ok(pruned !== null && pruned > 0);
    // Read after pruning: a parallel burst can leave the cap's evictions settling until then.
    const liveAfter = new Set((await server.runtime.sessions.list(uid)).map((s) => s.device_id).filter((id) => id !== ''));
    const kept = await server.runtime.accounts.listDevices(uid);
    assert.equal(kept.length, liveAfter.size + DEVICE_HISTORY, 'live devices plus the newest idle ones');
    for (const device of liveAfter) assert.ok(kept.some((d) => d.deviceId === device), `live device ${device} kept`);

    // An idle device is also forgotten once it is older than the idle limit; the live ones stay.
    server.clock.advance(31 * DAY);
    await server.runtime.kv.del(DEVICE_PRUNE_LOCK_KEY);
    await pruneDevices(server.runtime);
    const stillLive = new Set((await server.runtime.sessions.list(uid)).map((s) => s.device_id).filter((id) => id !== ''));
    const left = await server.runtime.accounts.listDevices(uid);
    assert.ok(left.every((d) => stillLive.has(d.deviceId)), JSON.stringify(left));
  });
});
