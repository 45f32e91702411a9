/**
 * Which address is the client's: the socket's, unless the peer is a proxy listed in trust_proxy.
 * Observed where it matters — the `ip` a session records, and the per-IP login rate limit.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { call, startTestServer, type TestServer } from '../support/server.ts';
import { startLatchkey } from '../support/processes.ts';

const PASSWORD = 'correct horse';

let users = 0;
/** Registers a fresh user (no forwarding header) and returns its name. */
async function newUser(server: { url: string }): Promise<string> {
  users += 1;
  const username = `user${users}`;
  const registered = await call(server, 'POST', '/v1/user/register', { username, password: PASSWORD });
  assert.equal(registered.status, 201, JSON.stringify(registered.body));
  return username;
}

/** Logs in with an X-Forwarded-For header (or none) from this process, i.e. from 127.0.0.1. */
async function loginForwardedFor(server: { url: string }, username: string, forwardedFor: string | undefined): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (forwardedFor !== undefined) headers['x-forwarded-for'] = forwardedFor;
  return fetch(`${server.url}/v1/user/login`, { method: 'POST', headers, body: JSON.stringify({ username, password: PASSWORD, flag: 1 }) });
}

/** The `ip` the server recorded for the session that a login with `forwardedFor` created. */
async function recordedIp(server: { url: string }, forwardedFor: string | undefined): Promise<string> {
  const username = await newUser(server);
  const response = await loginForwardedFor(server, username, forwardedFor);
  const login = (await response.json()) as { token: string; sid: string };
  assert.equal(response.status, 200, JSON.stringify(login));
  const listed = await call(server, 'GET', '/v1/user/sessions', undefined, login.token);
  assert.equal(listed.status, 200);
  const session = (listed.body as { sid: string; ip: string }[]).find((s) => s.sid === login.sid);
  assert.ok(session !== undefined, 'the login\'s session is listed');
  return session.ip;
}

const servers: TestServer[] = [];
async function serverWith(overrides: Record<string, unknown>): Promise<TestServer> {
  const server = await startTestServer(overrides);
  servers.push(server);
  return server;
}
after(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

describe('trust_proxy decides whose X-Forwarded-For is believed', () => {
  it('by default X-Forwarded-For is ignored: the session records the socket address', async () => {
    const server = await serverWith({});
    assert.equal(await recordedIp(server, '1.2.3.4'), '127.0.0.1');
    assert.equal(await recordedIp(server, undefined), '127.0.0.1');
  });

  it('trust_proxy false is the default', async () => {
    const server = await serverWith({ trust_proxy: false });
    assert.equal(await recordedIp(server, '1.2.3.4'), '127.0.0.1');
  });

  it('when the peer is a listed proxy, the client address comes from X-Forwarded-For', async () => {
    const server = await serverWith({ trust_proxy: '127.0.0.1' });
    assert.equal(await recordedIp(server, '1.2.3.4'), '1.2.3.4');
    assert.equal(await recordedIp(server, undefined), '127.0.0.1', 'no header: the proxy itself is the client');
  });

  it('a CIDR or named range that holds the peer makes it trusted too', async () => {
    const cidr = await serverWith({ trust_proxy: ['10.0.0.0/8', '127.0.0.0/8'] });
    assert.equal(await recordedIp(cidr, '1.2.3.4'), '1.2.3.4');
    const named = await serverWith({ trust_proxy: 'loopback' });
    assert.equal(await recordedIp(named, '1.2.3.4'), '1.2.3.4');
  });

  it('X-Forwarded-For from a peer that is not the listed proxy is ignored', async () => {
    const server = await serverWith({ trust_proxy: '10.0.0.1' });
    assert.equal(await recordedIp(server, '1.2.3.4'), '127.0.0.1');
  });

  it('only trusted hops are skipped: an address the client itself prepended is not believed', async () => {
    const server = await serverWith({ trust_proxy: '127.0.0.1' });
    // The proxy appends the address it saw (1.2.3.4) to whatever the client sent (6.6.6.6).
    assert.equal(await recordedIp(server, '6.6.6.6, 1.2.3.4'), '1.2.3.4');
  });

  it('trust_proxy true believes any peer', async () => {
    const server = await serverWith({ trust_proxy: true });
    assert.equal(await recordedIp(server, '1.2.3.4'), '1.2.3.4');
  });
});

describe('the per-IP login limit counts the real client', () => {
  const limited = { rate_limits: { login: { max: 2, window_seconds: 60 }, register: { max: 100_000 } } };

  it('an untrusted peer cannot dodge the limit by varying X-Forwarded-For', async () => {
    const server = await serverWith(limited);
    const username = await newUser(server);
    const statuses: number[] = [];
    for (const forwardedFor of ['1.1.1.1', '2.2.2.2', '3.3.3.3']) {
      const response = await loginForwardedFor(server, username, forwardedFor);
      await response.arrayBuffer();
      statuses.push(response.status);
    }
    assert.deepEqual(statuses, [200, 200, 429]);
  });

  it('behind a trusted proxy each forwarded client has its own budget', async () => {
    const server = await serverWith({ ...limited, trust_proxy: '127.0.0.1' });
    const username = await newUser(server);
    const statuses: number[] = [];
    for (const forwardedFor of ['1.1.1.1', '1.1.1.1', '1.1.1.1', '2.2.2.2']) {
      const response = await loginForwardedFor(server, username, forwardedFor);
      await response.arrayBuffer();
      statuses.push(response.status);
    }
    assert.deepEqual(statuses, [200, 200, 429, 200]);
  });
});

describe('LATCHKEY_TRUST_PROXY configures a served node', () => {
  it('latchkey serve with LATCHKEY_TRUST_PROXY=127.0.0.1 believes its proxy; without it, it does not', async () => {
    const trusting = await startLatchkey({}, { env: { LATCHKEY_TRUST_PROXY: '127.0.0.1' } });
    const plain = await startLatchkey({});
    try {
      assert.equal(await recordedIp(trusting, '1.2.3.4'), '1.2.3.4');
      assert.equal(await recordedIp(plain, '1.2.3.4'), '127.0.0.1');
    } finally {
      await Promise.all([trusting.stop(), plain.stop()]);
    }
  });
});
