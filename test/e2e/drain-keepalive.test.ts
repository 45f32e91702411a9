import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { call, startTestServer } from '../support/server.ts';

describe('closing a node with keep-alive clients', () => {
  it('a login in flight when the node closes still answers, and its keep-alive connection does not hold the close', async () => {
    // Hashing at the real cost keeps the login in flight for tens of milliseconds.
    const server = await startTestServer({ password: { memory_cost: 19_456, time_cost: 2 } });
    const registered = await call(server, 'POST', '/v1/user/register', { username: 'drainer', password: 'correct horse' });
    assert.equal(registered.status, 201);
    // Close only once the node has the login: closed before the request arrives, the node rightly
    // answers 503, and on a loaded machine a fixed pause did not always let the request get there.
    const received = once(server.app.server, 'request');
    // fetch keeps the connection alive after the answer, as browsers and proxies do.
    const login = call(server, 'POST', '/v1/user/login', { username: 'drainer', password: 'correct horse', flag: 1 });
    await received;
    const stopped = server.stop().then(() => 'stopped' as const);
    const answer = await login;
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(await Promise.race([stopped, sleep(3000, 'still open' as const, { ref: false })]), 'stopped');
  });
});
