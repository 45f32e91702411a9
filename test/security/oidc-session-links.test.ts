/**
 * Hole 14 (part): state a login leaves that nothing bounds. An SSO session's links (its record with
 * the sealed ID token, and its fields in the identity's and the IdP session's indexes) were kept
 * until the session's own 30-day expiry, whichever way the session ended. Now a link dies with its
 * session: removed by the call that ends it, and a link whose session is gone is pruned at the
 * identity's next SSO login.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { call } from '../support/server.ts';
import { Browser, ssoLogin, startSsoWorld, type SsoWorld } from '../support/idp.ts';
import { linkSession, readLink, type SessionLink } from '../../src/flows/oidc/session-links.ts';
import { setAccountStatus } from '../../src/core/accounts.ts';

describe('an SSO session\'s links end with the session', () => {
  let world: SsoWorld;
  before(async () => {
    world = await startSsoWorld();
  });
  after(async () => {
    await world.stop();
  });

  const identityIndex = (link: SessionLink) => world.server.runtime.kv.hgetall(`user:{${link.uid}}:oidc:${link.identityId}`);
  const idpIndex = (link: SessionLink) => world.server.runtime.kv.hgetall(
    `oidc:idpsess:${createHash('sha256').update([link.issuer, link.idpSid ?? ''].join('\n')).digest('base64url')}`,
  );

  async function linkOf(sid: string): Promise<SessionLink> {
    const link = await readLink(world.server.runtime.kv, sid);
    assert.ok(link !== null, `session ${sid} is linked`);
    return link;
  }

  async function assertUnlinked(sid: string, link: SessionLink): Promise<void> {
    assert.equal(await readLink(world.server.runtime.kv, sid), null, 'the link record is gone');
    assert.equal((await identityIndex(link))[sid], undefined, 'the identity index entry is gone');
    assert.equal((await idpIndex(link))[sid], undefined, 'the IdP session index entry is gone');
  }

  it('quit, revoke and revoke_others (in parallel) remove the ended sessions\' links and keep the live one\'s', async () => {
    const logins = await Promise.all(Array.from({ length: 4 }, () => ssoLogin(new Browser(), world.server, 'ada')));
    const [keeper, quitter, revoked, ...others] = logins;
    assert.ok(keeper !== undefined && quitter !== undefined && revoked !== undefined);
    const links = new Map(await Promise.all(logins.map(async (login) => [login.sid, await linkOf(login.sid)] as const)));
    assert.ok(links.get(quitter.sid)?.idpSid !== null, 'the IdP names its session');

    const answers = await Promise.all([
      call(world.server, 'POST', '/v1/user/quit', undefined, quitter.token),
      call(world.server, 'DELETE', `/v1/user/sessions/${revoked.sid}`, undefined, keeper.token),
    ]);
    assert.deepEqual(answers.map((answer) => answer.status), [200, 200]);
    assert.equal((await call(world.server, 'POST', '/v1/user/sessions/revoke_others', undefined, keeper.token)).status, 200);

    for (const ended of [quitter, revoked, ...others]) await assertUnlinked(ended.sid, links.get(ended.sid) ?? assert.fail());
    const kept = await linkOf(keeper.sid);
    assert.equal((await identityIndex(kept))[keeper.sid], '1');
  });

  it('a ban removes every link of the account', async () => {
    const logins = await Promise.all([ssoLogin(new Browser(), world.server, 'grace'), ssoLogin(new Browser(), world.server, 'grace')]);
    const links = await Promise.all(logins.map((login) => linkOf(login.sid)));
    await setAccountStatus(world.server.runtime, logins[0]?.uid ?? '', 'banned');
    for (const [index, login] of logins.entries()) await assertUnlinked(login.sid, links[index] ?? assert.fail());
  });

  it('a link left behind by a session that is gone is pruned at the identity\'s next SSO login', async () => {
    const first = await ssoLogin(new Browser(), world.server, 'linus');
    const link = await linkOf(first.sid);
    // As an older release, or a node that stopped between ending a session and unlinking it, left it.
    const ghost = 'ghost-session-id';
    await linkSession(world.server.runtime.kv, ghost, link, 30 * 86_400_000);
    assert.equal((await identityIndex(link))[ghost], '1');
    await ssoLogin(new Browser(), world.server, 'linus');
    await assertUnlinked(ghost, link);
    assert.equal((await identityIndex(link))[first.sid], '1', 'the live session keeps its link');
  });
});
