/**
 * Hole 10 (QR part): a copy of the session store must not let anyone finish someone else's QR
 * login. The auth code was the one secret kept in clear (the poller collected it from the store);
 * neither it nor the poll secret may appear anywhere in the store, in keys or in values.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startTestServer, testDefaults, type TestServer } from '../support/server.ts';
import { REDIS_URL, skipUnless, uniquePrefix } from '../support/services.ts';
import { deleteRedisKeys } from '../support/redis.ts';
import { exchange, grant, loginRequest, poll, registerApp, scan } from '../support/qr-clients.ts';

/** Every key under the prefix with its value(s), as one text to search. */
async function dumpStore(prefix: string): Promise<string> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const parts: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        const type = await redis.type(key);
        const value = type === 'string' ? await redis.get(key) : type === 'hash' ? JSON.stringify(await redis.hgetall(key)) : type;
        parts.push(`${key} ${value}`);
      }
    } while (cursor !== '0');
    return parts.join('\n');
  } finally {
    redis.disconnect();
  }
}

describe('QR secrets at rest (Redis)', { skip: await skipUnless('redis') }, () => {
  const prefix = uniquePrefix('qrrest');
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      store: REDIS_URL,
      store_prefix: prefix,
      rate_limits: { ...testDefaults.rate_limits, qr_create: { max: 1000 }, qr_exchange: { max: 1000 } },
      qr: { poll_timeout_seconds: 4 },
    });
  });
  after(async () => {
    await server.stop();
    await deleteRedisKeys(prefix);
  });

  it('after approval the store holds neither the auth code nor the poll secret, and the code still works', async () => {
    const app = await registerApp(server, 'restful');
    const request = await loginRequest(server);
    assert.equal((await scan(server, app, request.uuid)).status, 200);
    assert.equal((await grant(server, app, request.uuid, true)).status, 200);
    const polled = await poll(server, request.uuid, request.poll_secret, 'scanned');
    assert.equal(polled.body.status, 'authed');
    const code = polled.body.auth_code as string;
    assert.match(code, /^[A-Za-z0-9_-]{43}$/);

    const stored = await dumpStore(prefix);
    assert.ok(stored.includes(request.uuid), 'the dump does see the QR record');
    assert.ok(!stored.includes(code), 'the auth code is in the store in clear');
    assert.ok(!stored.includes(request.poll_secret), 'the poll secret is in the store in clear');

    const again = await poll(server, request.uuid, request.poll_secret, 'scanned');
    assert.equal(again.body.auth_code, code, 'every poll hands out the same code');
    const login = await exchange(server, code, request.uuid, request.poll_secret);
    assert.equal(login.status, 200, JSON.stringify(login.body));
  });
});
