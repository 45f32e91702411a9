/**
 * Kills the CI mutant "logout-not-final": the step that ends a session is GETDEL of its record.
 * After a logout, a revoke or a revoke-all, the token must not validate, on any node, ever again
 * (invariant 1: a logout is final), and a second logout finds nothing to end.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { SessionService } from '../../src/core/sessions/service.ts';
import { defaultDevicePolicies } from '../../src/core/sessions/policy.ts';
import { systemClock } from '../../src/ports/clock.ts';
import { cryptoRandom } from '../../src/ports/random.ts';

const login = (name: string, flag: 0 | 1) => ({
  uid: 'u1', flag, device: { device_id: name, device_name: name, device_model: 'm' }, method: 'password', ip: '127.0.0.1', userAgent: 'test',
}) as const;

describe('a session ended is ended for good', () => {
  it('logout, revoke and revoke-all each leave a token that no longer validates', async () => {
    const kv = new MemoryKv();
    // Two services on one store: two nodes, neither with anything cached.
    const options = { kv, clock: systemClock, random: cryptoRandom, policies: defaultDevicePolicies, ttlMs: 60_000, accountStatus: async () => 'active' as const };
    const node1 = new SessionService(options);
    const node2 = new SessionService(options);
    const a = await node1.issue(login('a', 1));
    const b = await node1.issue(login('b', 1));
    const c = await node1.issue(login('c', 0));
    assert.equal(await node2.logout(a.session), true);
    assert.equal(await node1.validate(a.token), null);
    assert.equal(await node2.validate(a.token), null);
    assert.equal(await node1.logout(a.session), false, 'a second logout ended something');
    assert.equal(await node2.revoke('u1', b.session.sid), true);
    assert.equal(await node1.validate(b.token), null);
    assert.equal(await node2.revokeAll('u1', 'ban'), 1);
    assert.equal(await node1.validate(c.token), null);
    assert.deepEqual(await node1.list('u1'), []);
  });
});
