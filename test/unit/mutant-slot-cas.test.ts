/**
 * Mutant "slot-blind-set" (test/mutation/ci-mutants.ts): the APP slot written with a blind SET instead of
 * compare-and-set. With an APP session already in the slot, two APP logins that both read it
 * before either writes must still leave ONE live APP session (invariant 3): the loser of the
 * compare-and-set reads again and ends the winner. A blind SET lets both writes land, each ends
 * only the old session, and the first writer lives on beside the second.
 *
 * The interleaving is forced, not hoped for: the first two reads of the slot wait for each other.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { readsMeetingAt } from '../mutation/meeting-kv.ts';
import { SessionService } from '../../src/core/sessions/service.ts';
import { defaultDevicePolicies } from '../../src/core/sessions/policy.ts';
import { deviceSlotKey } from '../../src/core/sessions/keys.ts';
import { systemClock } from '../../src/ports/clock.ts';
import { cryptoRandom } from '../../src/ports/random.ts';

const APP = 0;
const appLogin = (name: string) => ({
  uid: 'u1', flag: APP, device: { device_id: name, device_name: name, device_model: 'phone' }, method: 'password', ip: '127.0.0.1', userAgent: 'test',
}) as const;


describe('exclusive slot: an existing APP session plus two concurrent APP logins', () => {
  it('leaves exactly one live APP session, the slot naming it', async () => {
    const memory = new MemoryKv();
    const { kv, arm } = readsMeetingAt(memory, deviceSlotKey('u1', APP));
    const sessions = new SessionService({
      kv, clock: systemClock, random: cryptoRandom, policies: defaultDevicePolicies, ttlMs: 60_000, accountStatus: async () => 'active',
    });
    const existing = await sessions.issue(appLogin('existing'));
    arm(2);
    const [b, c] = await Promise.all([sessions.issue(appLogin('b')), sessions.issue(appLogin('c'))]);
    const live = [];
    for (const issued of [existing, b, c]) if ((await sessions.validate(issued.token)) !== null) live.push(issued.session.sid);
    assert.equal(live.length, 1, `live APP sessions: ${live.length}; exclusive means one`);
    assert.equal(await memory.get(deviceSlotKey('u1', APP)), live[0]);
  });

  it('a late logout of a replaced session does not release the slot of the session that replaced it', async () => {
    // Mutant "slot-release-blind-del": ending a session deleted the slot whoever held it. The
    // replaced phone's logout then freed the new phone's slot, and the next APP login displaced
    // nothing: two live APP sessions.
    const memory = new MemoryKv();
    const sessions = new SessionService({
      kv: memory, clock: systemClock, random: cryptoRandom, policies: defaultDevicePolicies, ttlMs: 60_000, accountStatus: async () => 'active',
    });
    const old = await sessions.issue(appLogin('old'));
    const current = await sessions.issue(appLogin('current'));
    assert.equal(await sessions.logout(old.session), false, 'the replaced session had already ended');
    assert.equal(await memory.get(deviceSlotKey('u1', APP)), current.session.sid);
    const next = await sessions.issue(appLogin('next'));
    assert.equal(await sessions.validate(current.token), null, 'the next APP login left the current one live');
    assert.ok(await sessions.validate(next.token));
  });
});
