/**
 * Session limits over HTTP on the real server (docs/api.md §3, docs/design.md §3.2, 7): a full
 * reject_new limit answers 409 `session_limit` with the limit, on the password, code and QR login routes
 * alike, and leaves no session, device row or "ok" audit row; an evict_oldest limit ends the oldest
 * session of the group, whose token then answers 401 reason `cap` naming the new device; parallel
 * logins never leave more than max.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { call, startTestServer, testDefaults, type Answer, type TestServer } from '../support/server.ts';
import { exchange, grant, loginRequest, poll, registerApp, scan } from '../support/qr-clients.ts';
import { deleteRedisKeys } from '../support/redis.ts';
import { lastCode, startCodeTestServer, type CodeTestServer } from '../support/codes.ts';
import { REDIS_URL, skipUnless, uniquePrefix } from '../support/services.ts';

const PASSWORD = 'correct horse';
/** PC alone: one at a time, refused past it. APP and Web together: two, the oldest ends past it. */
const LIMITS = [
  { flags: [2], max: 1, on_exceed: 'reject_new' },
  { flags: [0, 1], max: 2, on_exceed: 'evict_oldest' },
];

const device = (name: string) => ({ device_id: name, device_name: name, device_model: `model ${name}` });

function assertRefused(answer: Answer, limit: { flags: number[]; max: number }): void {
  assert.equal(answer.status, 409, JSON.stringify(answer.body));
  assert.deepEqual(answer.body, {
    status: 409,
    code: 'session_limit',
    msg: answer.body.msg,
    details: { limit },
  });
  assert.equal(typeof answer.body.msg, 'string');
}

const redisPrefix = uniquePrefix('limits');
const stores = [
  { name: 'embedded store', store: {}, skip: false as false | string, cleanup: async () => {} },
  { name: 'Redis', store: { store: REDIS_URL, store_prefix: redisPrefix }, skip: await skipUnless('redis'), cleanup: () => deleteRedisKeys(redisPrefix) },
];

for (const { name, store, skip, cleanup } of stores) describe(`session limits over HTTP (${name})`, { skip }, () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      ...store,
      session_limits: LIMITS,
      rate_limits: { ...testDefaults.rate_limits, qr_create: { max: 100_000 }, qr_exchange: { max: 100_000 } },
      // Parallel logins reserve their throttle attempts all at once (docs/design.md §3.5).
      login_throttle: { per_account_ip: 1000, per_account: 100_000 },
    });
  });
  after(async () => {
    await server?.stop();
    await cleanup();
  });

  const login = (username: string, flag: number, name: string): Promise<Answer> =>
    call(server, 'POST', '/v1/user/login', { username, password: PASSWORD, flag, device: device(name) });
  const validates = async (token: string): Promise<boolean> => (await call(server, 'GET', '/v1/user/current', undefined, token)).status === 200;

  it('reject_new: 409 session_limit with details.limit; nothing of the refused login is left; a logout frees the seat', async () => {
    const app = await registerApp(server, 'pcuser');
    const pc1 = await login('pcuser', 2, 'pc1');
    assert.equal(pc1.status, 200);
    const sessionsBefore = (await call(server, 'GET', '/v1/user/sessions', undefined, app.token)).body;

    const refused = await login('pcuser', 2, 'pc2');
    assertRefused(refused, { flags: [2], max: 1 });

    assert.deepEqual((await call(server, 'GET', '/v1/user/sessions', undefined, app.token)).body, sessionsBefore, 'the refused login left a session');
    const devices = await server.runtime.accounts.listDevices(app.uid);
    assert.ok(!devices.some((d) => d.deviceId === 'pc2'), 'the refused login left a device row');
    const trail = (await server.runtime.accounts.queryAudit({ uid: app.uid, limit: 50 })).map((e) => [e.type, e.result, e.reason, e.sid]);
    assert.deepEqual(trail[0], ['login', 'fail', 'password:session_limit', null], 'the refusal is audited as a failed login');
    assert.equal(trail.filter(([type, result]) => type === 'login' && result === 'ok').length, 2, 'register and pc1 only');
    const metrics = await fetch(`${server.metricsUrl}`).then((r) => r.text());
    assert.match(metrics, /latchkey_login_total\{method="password",result="session_limit"\} 1/);
    assert.equal(await validates(pc1.body.token), true);

    assert.equal((await call(server, 'POST', '/v1/user/quit', {}, pc1.body.token)).status, 200);
    assert.equal((await login('pcuser', 2, 'pc3')).status, 200);
  });

  it('reject_new reaches the QR exchange too: the browser gets the 409, not a session', async () => {
    const app = await registerApp(server, 'qruser');
    assert.equal((await login('qruser', 2, 'pc1')).status, 200);
    const request = await loginRequest(server, 2);
    assert.equal((await scan(server, app, request.uuid)).status, 200);
    assert.equal((await grant(server, app, request.uuid, true)).status, 200);
    const authed = await poll(server, request.uuid, request.poll_secret, 'scanned');
    assert.equal(authed.body.status, 'authed');
    assertRefused(await exchange(server, authed.body.auth_code, request.uuid, request.poll_secret), { flags: [2], max: 1 });
    const trail = await server.runtime.accounts.queryAudit({ uid: app.uid, limit: 50 });
    assert.ok(trail.some((e) => e.type === 'login' && e.result === 'fail' && e.reason === 'qr:session_limit'), JSON.stringify(trail));
  });

  it('every login route documents the 409 session_limit in the OpenAPI document', async () => {
    const { paths } = (await call(server, 'GET', '/openapi.json')).body;
    const routes = ['/v1/user/login', '/v1/user/register', '/v1/user/code/login', '/v1/user/login_authcode/{auth_code}', '/v1/auth/oidc/{id}/exchange'];
    for (const route of routes) {
      const conflict = paths[route]?.post?.responses?.['409'];
      assert.ok(conflict !== undefined, `${route} lists no 409`);
      assert.ok(JSON.stringify(conflict).includes('session_limit'), `${route}: 409 does not name session_limit`);
    }
  });

  it('evict_oldest: the oldest session of the group ends; its token answers 401 reason cap, by the new device', async () => {
    const phone = await registerApp(server, 'evictee');
    const web1 = await login('evictee', 1, 'web1');
    assert.equal(await validates(phone.token), true);
    const web2 = await login('evictee', 1, 'web2');
    assert.equal(web2.status, 200);
    const answer = await call(server, 'GET', '/v1/user/current', undefined, phone.token);
    assert.equal(answer.status, 401);
    assert.equal(answer.body.details.reason, 'cap');
    assert.deepEqual(answer.body.details.by, { device_flag: 1, device_name: 'web2', device_model: 'model web2' });
    assert.deepEqual([await validates(web1.body.token), await validates(web2.body.token)], [true, true]);
  });

  it('parallel logins (Promise.all) leave at most max live sessions of the group, under either limit', async () => {
    await registerApp(server, 'crowd');
    const webs = await Promise.all(Array.from({ length: 12 }, (_, i) => login('crowd', 1, `web${i}`)));
    assert.deepEqual(webs.map((a) => a.status), webs.map(() => 200));
    const alive = await Promise.all(webs.map((a) => validates(a.body.token)));
    const liveWebs = webs.filter((_, i) => alive[i]);
    assert.ok(liveWebs.length >= 1 && liveWebs.length <= 2, `${liveWebs.length} Web sessions validate, max 2`);
    // The phone from registration is in the APP+Web group too: the user's own list holds at most 2.
    const listed: { device_flag: number }[] = (await call(server, 'GET', '/v1/user/sessions', undefined, liveWebs[0]?.body.token)).body;
    assert.ok(listed.length <= 2, `${listed.length} sessions of the APP+Web group are listed`);

    await registerApp(server, 'pccrowd');
    const pcs = await Promise.all(Array.from({ length: 12 }, (_, i) => login('pccrowd', 2, `pc${i}`)));
    for (const answer of pcs) if (answer.status !== 200) assertRefused(answer, { flags: [2], max: 1 });
    const ok = pcs.filter((a) => a.status === 200);
    assert.ok(ok.length >= 1, 'every parallel login was refused');
    const livePcs = (await Promise.all(ok.map((a) => validates(a.body.token)))).filter(Boolean).length;
    assert.equal(livePcs, 1, `${livePcs} PC sessions validate, max 1`);
  });
});

describe('session limits over HTTP: the code login route', () => {
  let server: CodeTestServer;
  before(async () => {
    server = await startCodeTestServer({ session_limits: [{ flags: [1], max: 1, on_exceed: 'reject_new' }] });
  });
  after(async () => server?.stop());

  it('a code login past a full reject_new limit answers 409 session_limit and is audited as code:session_limit', async () => {
    const to = 'limited@example.test';
    const codeLogin = async (): Promise<Answer> => {
      assert.equal((await call(server, 'POST', '/v1/user/code/send', { channel: 'email', to, purpose: 'login' })).status, 200);
      const answer = await call(server, 'POST', '/v1/user/code/login', { channel: 'email', to, code: lastCode(server.dataDir, to), flag: 1 });
      server.clock.advance(61_000);
      return answer;
    };
    const first = await codeLogin();
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assertRefused(await codeLogin(), { flags: [1], max: 1 });
    const trail = await server.runtime.accounts.queryAudit({ uid: first.body.uid, limit: 50 });
    assert.ok(trail.some((e) => e.type === 'login' && e.result === 'fail' && e.reason === 'code:session_limit'), JSON.stringify(trail));
    const metrics = await fetch(server.metricsUrl).then((r) => r.text());
    assert.match(metrics, /latchkey_login_total\{method="code",result="session_limit"\} 1/);
  });
});
