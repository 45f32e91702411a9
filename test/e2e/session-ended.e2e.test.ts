/**
 * Over HTTP: a phone whose session another APP login replaced is told so, with the new device's
 * name, where a garbage token gets the plain 401 (docs/api.md §3).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { call, startTestServer, type TestServer } from '../support/server.ts';

describe('a token whose session ended says why', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => server?.stop());

  it('replaced by another APP login: 401 with the reason, when, and the device that took its place', async () => {
    assert.equal((await call(server, 'POST', '/v1/user/register', { username: 'twophones', password: 'correct horse battery' })).status, 201);
    const phone = await call(server, 'POST', '/v1/user/login', {
      username: 'twophones', password: 'correct horse battery', flag: 0, device: { device_id: 'p1', device_name: 'Pixel 8', device_model: 'Pixel' },
    });
    const before = Date.now();
    await call(server, 'POST', '/v1/user/login', {
      username: 'twophones', password: 'correct horse battery', flag: 0, device: { device_id: 'p2', device_name: 'iPhone 15', device_model: 'iPhone15,4' },
    });
    const answer = await call(server, 'GET', '/v1/user/current', undefined, phone.body.token);
    assert.equal(answer.status, 401);
    assert.equal(answer.body.code, 'unauthorized');
    assert.equal(answer.body.details.reason, 'replaced');
    assert.ok(answer.body.details.ended_at >= before && answer.body.details.ended_at <= Date.now());
    assert.deepEqual(answer.body.details.by, { device_flag: 0, device_name: 'iPhone 15', device_model: 'iPhone15,4' });
  });

  it('signed out: says logout; garbage and unknown tokens get no details', async () => {
    const login = await call(server, 'POST', '/v1/user/login', { username: 'twophones', password: 'correct horse battery', flag: 1 });
    assert.equal((await call(server, 'POST', '/v1/user/quit', {}, login.body.token)).status, 200);
    const ended = await call(server, 'GET', '/v1/user/current', undefined, login.body.token);
    assert.deepEqual([ended.status, ended.body.details?.reason], [401, 'logout']);
    for (const token of ['garbage', 'A'.repeat(43)]) {
      const answer = await call(server, 'GET', '/v1/user/current', undefined, token);
      assert.equal(answer.status, 401);
      assert.equal(answer.body.details, undefined, token);
    }
  });
});
