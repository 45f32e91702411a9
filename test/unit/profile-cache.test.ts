import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProfileCache } from '../../src/core/profile-cache.ts';
import type { User } from '../../src/ports/accounts.ts';
import { StoreUnavailableError } from '../../src/ports/errors.ts';

const alice: User = {
  uid: 'u1', username: 'alice', name: 'Alice', email: null, zone: null, phone: null, emailVerified: false, phoneVerified: false, passwordHash: null,
  role: 'user', status: 'active', createdAt: 0, updatedAt: 0,
};

/** A database that answers, is down, or breaks; and counts its reads. */
function fakeDatabase() {
  const db = { mode: 'up' as 'up' | 'down' | 'broken', reads: 0, name: 'Alice' };
  const load = async (uid: string): Promise<User | null> => {
    db.reads += 1;
    if (db.mode === 'down') throw new StoreUnavailableError('account database unavailable');
    if (db.mode === 'broken') throw new Error('a bug');
    return uid === alice.uid ? { ...alice, name: db.name } : null;
  };
  return { db, load };
}

describe('profile cache', () => {
  it('serves the last profile read while the database is unreachable, within the stale bound', async () => {
    const clock = { t: 0, now: () => clock.t };
    const { db, load } = fakeDatabase();
    const cache = new ProfileCache(load, clock, 2_000, 100, 60_000);
    assert.equal((await cache.get('u1'))?.name, 'Alice');
    db.mode = 'down';
    clock.t = 2_500;
    assert.equal((await cache.get('u1'))?.name, 'Alice');
    // The stale answer is kept for ttlMs too: a down database is asked once per uid per ttlMs.
    const reads = db.reads;
    clock.t = 3_000;
    await cache.get('u1');
    assert.equal(db.reads, reads);
    // Past the stale bound (counted from the last good read) the outage shows.
    clock.t = 61_000;
    await assert.rejects(cache.get('u1'), StoreUnavailableError);
  });

  it('a profile never read on this node is not invented: the outage shows', async () => {
    const clock = { t: 0, now: () => clock.t };
    const { db, load } = fakeDatabase();
    const cache = new ProfileCache(load, clock);
    db.mode = 'down';
    await assert.rejects(cache.get('u1'), StoreUnavailableError);
    db.mode = 'up';
    assert.equal((await cache.get('u1'))?.name, 'Alice');
  });

  it('reads fresh again once the database is back', async () => {
    const clock = { t: 0, now: () => clock.t };
    const { db, load } = fakeDatabase();
    const cache = new ProfileCache(load, clock, 2_000);
    await cache.get('u1');
    db.mode = 'down';
    clock.t = 2_500;
    await cache.get('u1');
    db.mode = 'up';
    db.name = 'Alice Renamed';
    clock.t = 5_000;
    assert.equal((await cache.get('u1'))?.name, 'Alice Renamed');
  });

  it('an error that is not an outage is never hidden by a stale profile', async () => {
    const clock = { t: 0, now: () => clock.t };
    const { db, load } = fakeDatabase();
    const cache = new ProfileCache(load, clock, 2_000);
    await cache.get('u1');
    db.mode = 'broken';
    clock.t = 2_500;
    await assert.rejects(cache.get('u1'), /a bug/);
  });
});
