/**
 * The ImBridge port's contract, run against the WuKongIM adapter talking HTTP to the WuKongIM test
 * double: what each call sends, what each answer means (status 19 = banned, anything but a 200 =
 * unavailable), and that a hung server costs one timeout, not a hung login.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { WukongImBridge } from '../../src/adapters/wukongim/wukongim-bridge.ts';
import { ImBannedError, ImUnavailableError } from '../../src/ports/im-bridge.ts';
import { WukongImDouble } from '../support/wukongim-double.ts';

const MANAGER_TOKEN = 'manager-secret';

describe('ImBridge: the WuKongIM adapter', () => {
  let double: WukongImDouble;
  let bridge: WukongImBridge;

  before(async () => {
    double = await WukongImDouble.start({ managerToken: MANAGER_TOKEN });
    bridge = new WukongImBridge({ apiUrl: double.url, managerToken: MANAGER_TOKEN, timeoutMs: 300 });
  });
  after(() => double.close());
  beforeEach(() => double.recover());

  it('updateToken sends uid, token, flag and level, and the IM server then holds that token', async () => {
    await bridge.updateToken({ uid: 'u1', token: 'a'.repeat(32), flag: 1, level: 'slave' });
    const [call] = double.callsTo('/user/token').slice(-1);
    assert.deepEqual(call?.body, { uid: 'u1', token: 'a'.repeat(32), device_flag: 1, device_level: 0 });
    assert.equal(double.tokenOf('u1', 1), 'a'.repeat(32));
  });

  it('a Master update kicks the device already connected on that flag; a Slave update does not', async () => {
    await bridge.updateToken({ uid: 'u2', token: 'b'.repeat(32), flag: 0, level: 'master' });
    const phone = double.connect('u2', 0, 'b'.repeat(32));
    await bridge.updateToken({ uid: 'u2', token: 'c'.repeat(32), flag: 1, level: 'slave' });
    const browser = double.connect('u2', 1, 'c'.repeat(32));
    await bridge.updateToken({ uid: 'u2', token: 'd'.repeat(32), flag: 1, level: 'slave' });
    assert.equal(browser?.kickedBy, null);
    await bridge.updateToken({ uid: 'u2', token: 'e'.repeat(32), flag: 0, level: 'master' });
    assert.equal(phone?.kickedBy, 'master_update');
    assert.equal(double.callsTo('/user/token').at(-1)?.body.device_level, 1);
  });

  it('deviceQuit(-1) clears every flag\'s token and kicks every connection', async () => {
    await bridge.updateToken({ uid: 'u3', token: 'f'.repeat(32), flag: 1, level: 'slave' });
    await bridge.updateToken({ uid: 'u3', token: '0'.repeat(32), flag: 2, level: 'slave' });
    const web = double.connect('u3', 1, 'f'.repeat(32));
    const pc = double.connect('u3', 2, '0'.repeat(32));
    await bridge.deviceQuit('u3', -1);
    assert.deepEqual(double.callsTo('/user/device_quit').at(-1)?.body, { uid: 'u3', device_flag: -1 });
    assert.deepEqual([web?.kickedBy, pc?.kickedBy], ['device_quit', 'device_quit']);
    assert.equal(double.connect('u3', 1, 'f'.repeat(32)), null, 'the old token no longer connects');
  });

  it('sends the manager token as header `token`; a wrong one is refused as unavailable', async () => {
    const wrong = new WukongImBridge({ apiUrl: double.url, managerToken: 'not-it', timeoutMs: 300 });
    await assert.rejects(wrong.deviceQuit('u4', 1), ImUnavailableError);
    await bridge.deviceQuit('u4', 1);
  });

  it('status 19 (banned at the IM server) is ImBannedError', async () => {
    double.ban('u5');
    await assert.rejects(bridge.updateToken({ uid: 'u5', token: '1'.repeat(32), flag: 0, level: 'master' }), ImBannedError);
  });

  it('an error status, a reset connection or a refused system uid is ImUnavailableError, never a token in the message', async () => {
    double.fail({ kind: 'status', status: 500 });
    await assert.rejects(bridge.updateToken({ uid: 'u6', token: '2'.repeat(32), flag: 1, level: 'slave' }), (error: Error) => {
      assert.ok(error instanceof ImUnavailableError);
      assert.doesNotMatch(error.message, /2{32}|manager-secret/);
      return true;
    });
    double.fail({ kind: 'reset' });
    await assert.rejects(bridge.deviceQuit('u6', 1), ImUnavailableError);
    double.recover();
    await assert.rejects(bridge.updateToken({ uid: 'u_10000', token: '3'.repeat(32), flag: 0, level: 'master' }), ImUnavailableError);
  });

  it('a hung IM server costs one timeout', async () => {
    double.fail({ kind: 'hang' });
    const started = performance.now();
    await assert.rejects(bridge.deviceQuit('u7', 1), /timed out after 300 ms/);
    assert.ok(performance.now() - started < 5000);
  });

  it('an unreachable IM server is ImUnavailableError', async () => {
    const nowhere = new WukongImBridge({ apiUrl: 'http://127.0.0.1:1', managerToken: undefined, timeoutMs: 300 });
    await assert.rejects(nowhere.deviceQuit('u8', 1), ImUnavailableError);
  });
});
