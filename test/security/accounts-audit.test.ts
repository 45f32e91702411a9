/**
 * Failed code logins and password resets on an account are in that account's own audit trail
 * (GET /v1/user/audit), so its owner sees someone guessing codes sent to their address.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { call } from '../support/server.ts';
import { startCodeTestServer, wrongCodes, type CodeTestServer } from '../support/codes.ts';


describe('failed code attempts are audited under the account', () => {
  let server: CodeTestServer;
  before(async () => {
    server = await startCodeTestServer();
  });
  after(async () => {
    await server.stop();
  });

  const codeFor = async (to: string, purpose: string): Promise<string> => {
    server.clock.advance(61_000);
    const drawn = server.random.codes.length;
    assert.equal((await call(server, 'POST', '/v1/user/code/send', { channel: 'email', to, purpose })).status, 200);
    const code = server.random.codes[drawn];
    assert.ok(code !== undefined);
    return code;
  };

  it("wrong codes tried on an account's address show in the owner's GET /v1/user/audit", async () => {
    const to = 'owner-audit@example.test';
    const owner = await call(server, 'POST', '/v1/user/code/login', { channel: 'email', to, code: await codeFor(to, 'login'), flag: 1 });
    assert.equal(owner.status, 200, JSON.stringify(owner.body));

    const code = await codeFor(to, 'login');
    const guesses = await Promise.all(wrongCodes(code, 3).map((guess) =>
      call(server, 'POST', '/v1/user/code/login', { channel: 'email', to, code: guess, flag: 1 })));
    assert.deepEqual(guesses.map((g) => g.status), [401, 401, 401]);
    const resetCode = await codeFor(to, 'reset_password');
    const reset = await call(server, 'POST', '/v1/user/pwdforget', { channel: 'email', to, code: wrongCodes(resetCode, 1)[0], new_password: 'attacker wants this' });
    assert.equal(reset.status, 401);

    const audit = await call(server, 'GET', '/v1/user/audit?limit=100', undefined, owner.body.token);
    assert.equal(audit.status, 200);
    const failed = audit.body.events.filter((e: { type: string; result: string; reason: string }) =>
      e.result === 'fail' && e.reason === 'code:invalid_credentials');
    assert.equal(failed.filter((e: { type: string }) => e.type === 'login').length, 3, JSON.stringify(audit.body.events));
    assert.equal(failed.filter((e: { type: string }) => e.type === 'password_reset').length, 1);
  });
});
