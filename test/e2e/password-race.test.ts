import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { call, startTestServer, type TestServer } from '../support/server.ts';
import type { IssueInput, IssuedSession } from '../../src/core/sessions/service.ts';

/**
 * A login whose password check passed just before a password reset, and whose session is issued
 * just after the reset swept the user's sessions, must not keep that session.
 */
describe('a password reset racing a password login', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.stop();
  });

  it('revokes the login that checked the old password before the reset swept', async () => {
    const registered = await call(server, 'POST', '/v1/user/register', { username: 'raced', password: 'old password', flag: 1 });
    const { sessions, accounts, hasher, clock } = server.runtime;
    const issue = sessions.issue.bind(sessions);
    // The reset runs in the gap: after the login verified the old password, before it issues.
    sessions.issue = async (input: IssueInput): Promise<IssuedSession> => {
      sessions.issue = issue;
      const user = await accounts.findByUid(input.uid);
      assert.ok(await accounts.updatePasswordHash(input.uid, user?.passwordHash ?? null, await hasher.hash('new password'), clock.now()));
      await sessions.revokeAll(input.uid, 'password');
      return issue(input);
    };
    const raced = await call(server, 'POST', '/v1/user/login', { username: 'raced', password: 'old password', flag: 2 });
    assert.equal(raced.status, 401);
    assert.equal(raced.body.code, 'invalid_credentials');
    const listed = await sessions.list(registered.body.uid);
    assert.deepEqual(listed, [], 'no session of the old password survives the reset');
    assert.equal((await call(server, 'POST', '/v1/user/login', { username: 'raced', password: 'new password', flag: 2 })).status, 200);
  });
});
