/**
 * Passkeys over HTTP (docs/api.md §14): registering behind step-up, signing in with a passkey alone,
 * listing, renaming, removing; and the attacks: another user's session on my passkey, a replayed or
 * parallel assertion, a challenge used twice, an assertion for another origin or rp id, a passkey
 * removed meanwhile, a cloned authenticator's counter, a banned account. The browser is a software
 * authenticator (test/support/webauthn.ts) signing real ES256 assertions.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createAccount } from '../../src/flows/password/password-flow.ts';
import { call } from '../support/server.ts';
import { startCodeTestServer, type CodeTestServer } from '../support/codes.ts';
import { SoftAuthenticator } from '../support/webauthn.ts';

const PASSWORD = 'correct horse battery';

describe('passkeys over HTTP', () => {
  let server: CodeTestServer;
  let origin: string;
  before(async () => {
    server = await startCodeTestServer();
    origin = server.url.replace('127.0.0.1', 'localhost');
  });
  after(async () => server?.stop());

  async function register(username: string): Promise<{ token: string; uid: string }> {
    const answer = await call(server, 'POST', '/v1/user/register', { username, password: PASSWORD });
    assert.equal(answer.status, 201);
    return { token: answer.body.token, uid: answer.body.uid };
  }

  /** Registers a passkey of the token's account on the authenticator; answers its id. */
  async function addPasskey(token: string, authenticator: SoftAuthenticator, name?: string): Promise<string> {
    const options = await call(server, 'POST', '/v1/user/passkeys/register/options', undefined, token);
    assert.equal(options.status, 200, JSON.stringify(options.body));
    const credential = authenticator.create(options.body, { origin });
    const verified = await call(server, 'POST', '/v1/user/passkeys/register/verify', { ...credential, ...(name === undefined ? {} : { name }) }, token);
    assert.equal(verified.status, 200, JSON.stringify(verified.body));
    return verified.body.id;
  }

  async function loginOptions(): Promise<any> {
    const options = await call(server, 'POST', '/v1/user/passkeys/login/options');
    assert.equal(options.status, 200);
    return options.body;
  }

  it('registers a passkey, lists it, signs in with it alone (a proven session), renames and removes it', async () => {
    const { token, uid } = await register('pk-alice');
    const authenticator = new SoftAuthenticator();
    const options = await call(server, 'POST', '/v1/user/passkeys/register/options', undefined, token);
    assert.equal(options.body.rp.id, 'localhost');
    assert.equal(options.body.user.name, 'pk-alice');
    assert.equal(options.body.authenticatorSelection.userVerification, 'required');
    assert.equal(options.body.authenticatorSelection.residentKey, 'required');
    const created = await call(server, 'POST', '/v1/user/passkeys/register/verify', { ...authenticator.create(options.body, { origin }), name: 'Laptop' }, token);
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const id = created.body.id;
    assert.deepEqual(created.body, { id, name: 'Laptop' });
    assert.equal((await call(server, 'GET', '/v1/user/mfa', undefined, token)).body.passkeys, 1);
    const listed = await call(server, 'GET', '/v1/user/passkeys', undefined, token);
    assert.deepEqual(listed.body.passkeys.map((p: any) => [p.id, p.name, p.transports, p.last_used_at]), [[id, 'Laptop', ['internal'], null]]);

    const login = await loginOptions();
    assert.deepEqual([login.rpId, login.allowCredentials, login.userVerification], ['localhost', [], 'required']);
    const signedIn = await call(server, 'POST', '/v1/user/passkeys/login/verify', {
      ...authenticator.get(login, { origin }), flag: 1, device: { device_id: 'web-1', device_name: 'Chrome', device_model: 'Linux' },
    });
    assert.equal(signedIn.status, 200, JSON.stringify(signedIn.body));
    assert.equal(signedIn.body.uid, uid);
    assert.equal(signedIn.body.mfa_required, undefined);
    const current = await call(server, 'GET', '/v1/user/current', undefined, signedIn.body.token);
    assert.deepEqual([current.body.session.method, current.body.session.device_flag, current.body.session.device_name], ['passkey', 1, 'Chrome']);
    assert.equal((await call(server, 'GET', '/v1/user/passkeys', undefined, token)).body.passkeys[0].last_used_at, server.clock.now());

    // A passkey login is proven for step-up: the new session may add a second passkey without step_up.
    const second = await addPasskey(signedIn.body.token, new SoftAuthenticator(), 'Phone');
    assert.equal((await call(server, 'PATCH', `/v1/user/passkeys/${second}`, { name: 'Old phone' }, token)).status, 200);
    assert.deepEqual((await call(server, 'GET', '/v1/user/passkeys', undefined, token)).body.passkeys.map((p: any) => p.name).sort(), ['Laptop', 'Old phone'], 'two passkeys made in one millisecond list in either order');
    assert.equal((await call(server, 'DELETE', `/v1/user/passkeys/${second}`, undefined, token)).status, 200);
    assert.equal((await call(server, 'DELETE', `/v1/user/passkeys/${second}`, undefined, token)).status, 404);
    assert.equal((await call(server, 'GET', '/v1/user/mfa', undefined, token)).body.passkeys, 1);

    const events = await server.runtime.accounts.queryAudit({ uid, limit: 50 });
    const kinds = events.map((e) => `${e.type}:${e.result}:${e.reason}`);
    for (const kind of ['passkey_register:ok:passkey', 'login:ok:passkey', 'passkey_remove:ok:passkey']) assert.ok(kinds.includes(kind), kind);
    const metrics = await server.runtime.metrics.registry.getSingleMetricAsString('latchkey_mfa_total');
    assert.match(metrics, /event="enrol",method="passkey",result="ok"\} 2/);
    assert.match(metrics, /event="verify",method="passkey",result="ok"\} 1/);
    assert.match(metrics, /event="remove",method="passkey",result="ok"\} 1/);
  });

  it('another user\'s session can neither rename nor remove my passkey (404), nor see it', async () => {
    const alice = await register('pk-owner');
    const mallory = await register('pk-mallory');
    const id = await addPasskey(alice.token, new SoftAuthenticator(), 'Mine');
    assert.equal((await call(server, 'PATCH', `/v1/user/passkeys/${id}`, { name: 'pwned' }, mallory.token)).status, 404);
    assert.equal((await call(server, 'DELETE', `/v1/user/passkeys/${id}`, undefined, mallory.token)).status, 404);
    assert.deepEqual((await call(server, 'GET', '/v1/user/passkeys', undefined, mallory.token)).body.passkeys, []);
    assert.deepEqual((await call(server, 'GET', '/v1/user/passkeys', undefined, alice.token)).body.passkeys.map((p: any) => p.name), ['Mine']);
    assert.equal((await call(server, 'GET', '/v1/user/passkeys')).status, 401, 'no token');
  });

  it('a login challenge works once: a replayed assertion is refused, and of parallel ones exactly one signs in', async () => {
    const { token } = await register('pk-replay');
    const authenticator = new SoftAuthenticator();
    await addPasskey(token, authenticator);
    const assertion = authenticator.get(await loginOptions(), { origin });
    assert.equal((await call(server, 'POST', '/v1/user/passkeys/login/verify', { ...assertion, flag: 1 })).status, 200);
    const replay = await call(server, 'POST', '/v1/user/passkeys/login/verify', { ...assertion, flag: 1 });
    assert.deepEqual([replay.status, replay.body.code], [410, 'expired']);

    const parallel = authenticator.get(await loginOptions(), { origin });
    const answers = await Promise.all(Array.from({ length: 6 }, () => call(server, 'POST', '/v1/user/passkeys/login/verify', { ...parallel, flag: 1 })));
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, 410, 410, 410, 410, 410]);
  });

  it('refuses an assertion signed for another origin or rp id, and burns its challenge', async () => {
    const { token } = await register('pk-phished');
    const authenticator = new SoftAuthenticator();
    await addPasskey(token, authenticator);
    const options = await loginOptions();
    const phished = await call(server, 'POST', '/v1/user/passkeys/login/verify', { ...authenticator.get(options, { origin: 'https://evil.example' }), flag: 1 });
    assert.deepEqual([phished.status, phished.body.code], [401, 'invalid_credentials']);
    const retried = await call(server, 'POST', '/v1/user/passkeys/login/verify', { ...authenticator.get(options, { origin }), flag: 1 });
    assert.equal(retried.status, 410, 'the challenge died with the failed try');
    const id = authenticator.credentials[0]!.id;
    const otherRp = await call(server, 'POST', '/v1/user/passkeys/login/verify', {
      ...authenticator.get(await loginOptions(), { origin, rpId: 'evil.example', credentialId: id }), flag: 1,
    });
    assert.deepEqual([otherRp.status, otherRp.body.code], [401, 'invalid_credentials']);
    const unverified = await call(server, 'POST', '/v1/user/passkeys/login/verify', { ...authenticator.get(await loginOptions(), { origin, flags: 0x01 }), flag: 1 });
    assert.equal(unverified.status, 401, 'user verification is required');
    assert.equal((await call(server, 'POST', '/v1/user/passkeys/login/verify', { ...authenticator.get(await loginOptions(), { origin }), flag: 1 })).status, 200);
  });

  it('refuses a removed passkey, a cloned authenticator\'s stale counter, and a banned account (403)', async () => {
    const { token, uid } = await register('pk-removed');
    const authenticator = new SoftAuthenticator();
    const id = await addPasskey(token, authenticator);
    const stale = authenticator.get(await loginOptions(), { origin });
    assert.equal((await call(server, 'POST', '/v1/user/passkeys/login/verify', { ...authenticator.get(await loginOptions(), { origin }), flag: 1 })).status, 200);
    const cloned = await call(server, 'POST', '/v1/user/passkeys/login/verify', { ...stale, flag: 1 });
    assert.deepEqual([cloned.status, cloned.body.code], [401, 'invalid_credentials'], 'counter 1 after counter 2 was stored');

    await server.runtime.accounts.setStatus(uid, 'banned', server.clock.now());
    const banned = await call(server, 'POST', '/v1/user/passkeys/login/verify', { ...authenticator.get(await loginOptions(), { origin }), flag: 1 });
    assert.deepEqual([banned.status, banned.body.code], [403, 'account_disabled']);
    await server.runtime.accounts.setStatus(uid, 'active', server.clock.now());

    assert.equal((await call(server, 'DELETE', `/v1/user/passkeys/${id}`, undefined, token)).status, 200);
    const removed = await call(server, 'POST', '/v1/user/passkeys/login/verify', { ...authenticator.get(await loginOptions(), { origin }), flag: 1 });
    assert.deepEqual([removed.status, removed.body.code], [401, 'invalid_credentials']);
  });

  it('a registration challenge belongs to its session and works once; a wrong origin is refused', async () => {
    const { token } = await register('pk-bound');
    const other = (await call(server, 'POST', '/v1/user/login', { username: 'pk-bound', password: PASSWORD, flag: 2 })).body.token;
    const authenticator = new SoftAuthenticator();
    const options = await call(server, 'POST', '/v1/user/passkeys/register/options', undefined, token);
    const credential = authenticator.create(options.body, { origin });
    const elsewhere = await call(server, 'POST', '/v1/user/passkeys/register/verify', credential, other);
    assert.deepEqual([elsewhere.status, elsewhere.body.code], [410, 'expired'], 'another session has no pending registration');
    assert.equal((await call(server, 'POST', '/v1/user/passkeys/register/verify', credential, token)).status, 200);
    const again = await call(server, 'POST', '/v1/user/passkeys/register/verify', credential, token);
    assert.equal(again.status, 410, 'the challenge was used');

    const next = await call(server, 'POST', '/v1/user/passkeys/register/options', undefined, token);
    assert.deepEqual(next.body.excludeCredentials.map((c: any) => c.id), [credential.id]);
    const phished = await call(server, 'POST', '/v1/user/passkeys/register/verify', new SoftAuthenticator().create(next.body, { origin: 'http://localhost:1' }), token);
    assert.deepEqual([phished.status, phished.body.code], [401, 'invalid_credentials']);
    assert.equal((await call(server, 'GET', '/v1/user/mfa', undefined, token)).body.passkeys, 1);
  });

  it('adding and removing a passkey need step-up; step-up with the password opens both again', async () => {
    const { token } = await register('pk-stepup');
    const authenticator = new SoftAuthenticator();
    const options = await call(server, 'POST', '/v1/user/passkeys/register/options', undefined, token);
    const id = await addPasskey(token, authenticator);
    server.clock.advance(301_000);
    for (const [method, path, body] of [
      ['POST', '/v1/user/passkeys/register/options', undefined],
      ['POST', '/v1/user/passkeys/register/verify', authenticator.create(options.body, { origin })],
      ['DELETE', `/v1/user/passkeys/${id}`, undefined],
    ] as const) {
      const refused = await call(server, method, path, body, token);
      assert.deepEqual([refused.status, refused.body.code, refused.body.details], [403, 'step_up_required', { methods: ['password'] }], path);
    }
    assert.equal((await call(server, 'PATCH', `/v1/user/passkeys/${id}`, { name: 'Renamed' }, token)).status, 200, 'a rename needs no step-up');
    assert.equal((await call(server, 'POST', '/v1/user/step_up', { method: 'password', password: PASSWORD }, token)).status, 200);
    assert.equal((await call(server, 'DELETE', `/v1/user/passkeys/${id}`, undefined, token)).status, 200);
  });

  it('an administrator\'s second-factor reset removes the passkeys too', async () => {
    await createAccount(server.runtime, { username: 'pk-admin', password: PASSWORD }, 'admin');
    const admin = (await call(server, 'POST', '/v1/user/login', { username: 'pk-admin', password: PASSWORD, flag: 1 })).body.token;
    const { token, uid } = await register('pk-lost-phone');
    const authenticator = new SoftAuthenticator();
    await addPasskey(token, authenticator);
    await addPasskey(token, new SoftAuthenticator());
    assert.equal((await call(server, 'DELETE', `/v1/manager/users/${uid}/mfa`, undefined, admin)).status, 200);
    const events = await server.runtime.accounts.queryAudit({ uid, type: 'mfa_reset', limit: 1 });
    assert.match(events[0]!.reason ?? '', /; totp:0; passkeys:2$/);
    const refused = await call(server, 'POST', '/v1/user/passkeys/login/verify', { ...authenticator.get(await loginOptions(), { origin }), flag: 1 });
    assert.equal(refused.status, 401);
  });
});
