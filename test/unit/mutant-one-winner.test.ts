/**
 * Kills the CI mutants "handoff-blind-used" and "qr-transition-blind-set": a one-time thing
 * (the SSO handoff code, a QR auth code's authed → consumed step) is used by compare-and-set, so of
 * racers that all read it unused exactly one wins. The sequential "second try is refused" tests
 * cannot tell a blind SET from a compare-and-set; here every racer reads before any writes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { createHandoff, lookupHandoff, markHandoffUsed, type Handoff } from '../../src/flows/oidc/handoff.ts';
import { s256 } from '../../src/flows/oidc/binding.ts';
import { transition } from '../../src/flows/qr/transition.ts';
import { recordKey, type QrRecord } from '../../src/flows/qr/record.ts';
import { LatchkeyError } from '../../src/core/errors.ts';
import { systemClock } from '../../src/ports/clock.ts';
import { cryptoRandom } from '../../src/ports/random.ts';
import { readsMeetingAt } from '../mutation/meeting-kv.ts';

const RACERS = 5;

describe('one-time steps raced by readers that all saw them unused', () => {
  it('an SSO handoff code is marked used by exactly one exchange', async () => {
    const memory = new MemoryKv();
    const handoff = { provider: 'idp', issuer: 'https://idp.test', uid: 'u1', identityId: 'i1' } as unknown as Handoff;
    const code = await createHandoff(memory, cryptoRandom, handoff);
    const { kv, arm } = readsMeetingAt(memory, `oidc:handoff:${s256(code)}`);
    arm(RACERS);
    const wins = await Promise.all(Array.from({ length: RACERS }, async () => {
      const found = await lookupHandoff(kv, code);
      return found.status === 'ready' && (await markHandoffUsed(kv, code, found.raw));
    }));
    assert.equal(wins.filter(Boolean).length, 1, `${wins.filter(Boolean).length} exchanges won one handoff code`);
    assert.equal((await lookupHandoff(memory, code)).status, 'used');
  });

  it('a QR auth code is consumed by exactly one exchange', async () => {
    const memory = new MemoryKv();
    const uuid = 'qr-race';
    const now = systemClock.now();
    const authed: QrRecord = {
      version: 3, status: 'authed', poll_secret_hash: 'h', scanner_uid: 'u1', scanner_sid: 's1', password_stamp: null, code_nonce: 'n',
      requester: { flag: 1, device: { device_id: 'd', device_name: 'd', device_model: 'm' }, ip: '127.0.0.1', user_agent: 't' },
      created_at: now, expires_at: now + 60_000,
    };
    await memory.set(recordKey(uuid), JSON.stringify(authed), { ttlMs: 120_000 });
    const { kv, arm } = readsMeetingAt(memory, recordKey(uuid));
    arm(RACERS);
    const outcomes = await Promise.all(Array.from({ length: RACERS }, () =>
      transition(kv, systemClock, uuid, (current, at) => {
        if (current.status !== 'authed') throw new LatchkeyError('expired', 'this auth code was already used');
        return { ...current, status: 'consumed', expires_at: at };
      }).then((t) => t.changed, () => false)));
    assert.equal(outcomes.filter(Boolean).length, 1, `${outcomes.filter(Boolean).length} exchanges consumed one auth code`);
  });
});
