import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { SessionService } from '../../src/core/sessions/service.ts';
import { defaultDevicePolicies } from '../../src/core/sessions/policy.ts';
import { systemClock } from '../../src/ports/clock.ts';
import { cryptoRandom } from '../../src/ports/random.ts';
import { StoreUnavailableError } from '../../src/ports/errors.ts';
import { failingOnce } from '../support/failing-kv.ts';

const APP = 0;
const appLogin = (name: string) => ({
  uid: 'u1', flag: APP, device: { device_id: name, device_name: name, device_model: 'phone' }, method: 'password', ip: '127.0.0.1', userAgent: 'test',
}) as const;

describe('an exclusive login that fails after taking the slot', () => {
  it('leaves the session it displaced to the next login, so exclusive still means one', async () => {
    const store = failingOnce(new MemoryKv());
    const sessions = new SessionService({
      kv: store.kv, clock: systemClock, random: cryptoRandom, policies: defaultDevicePolicies, ttlMs: 60_000, accountStatus: async () => 'active',
    });
    const first = await sessions.issue(appLogin('first'));
    // The second login takes the slot, then cannot end the first session: it fails (a 503 to its client).
    store.failNext('getdel');
    await assert.rejects(sessions.issue(appLogin('second')), StoreUnavailableError);
    // The store is back. The next APP login must end the first session too, not only the second.
    const third = await sessions.issue(appLogin('third'));
    assert.equal(await sessions.validate(first.token), null, 'the displaced first session still validates beside the third');
    assert.ok(await sessions.validate(third.token));
    const listed = await sessions.list('u1');
    assert.deepEqual(listed.filter((s) => s.device_flag === APP).map((s) => s.sid), [third.session.sid]);
  });
});
