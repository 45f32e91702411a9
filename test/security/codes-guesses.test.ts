/**
 * docs/security.md hole 3 (code part): a wrong guess must be counted before it is answered (never
 * GET-then-INCR), and a code must be usable exactly once, under parallel right and wrong guesses, on
 * the embedded store and on Redis, where the calls really interleave.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { codeTestLimits, lastCode, readOutbox, startCodeTestServer, wrongCodes, type CodeTestServer } from '../support/codes.ts';
import { call, type Answer } from '../support/server.ts';
import { REDIS_URL, skipUnless, uniquePrefix } from '../support/services.ts';
import { deleteRedisKeys } from '../support/redis.ts';

/** 50 guesses, right ones spread among wrong ones. */
function mixed(code: string, right: number): string[] {
  const wrong = wrongCodes(code, 50 - right);
  const step = Math.floor(50 / right);
  for (let i = 0; i < right; i++) wrong.splice(i * step, 0, code);
  return wrong;
}

function tally(answers: readonly Answer[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const { status } of answers) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

/** At most one success; at most five wrong answers, and five only if they came before any success. */
function assertOnceAndFive(answers: readonly Answer[]): void {
  const counts = tally(answers);
  const described = JSON.stringify(counts);
  assert.ok((counts[200] ?? 0) <= 1, `used once at most: ${described}`);
  assert.ok((counts[401] ?? 0) <= 5, `five wrong answers at most: ${described}`);
  assert.ok((counts[200] ?? 0) === 1 || (counts[401] ?? 0) === 5, `either it was used or five wrong guesses burnt it: ${described}`);
  assert.equal((counts[200] ?? 0) + (counts[401] ?? 0) + (counts[410] ?? 0), answers.length, `nothing but 200, 401, 410: ${described}`);
}

function guessSuite(overrides: () => Record<string, unknown>, cleanUp: () => Promise<void>): void {
  let server: CodeTestServer;
  before(async () => {
    server = await startCodeTestServer({ trust_proxy: true, ...overrides() });
  });
  after(async () => {
    await server.stop();
    await cleanUp();
  });
  const send = (to: string, purpose: string, ip = '198.51.100.1') => fetch(`${server.url}/v1/user/code/send`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': ip }, body: JSON.stringify({ channel: 'email', to, purpose }),
  }).then((r) => r.status);

  it('code/login: 50 parallel right and wrong guesses log in at most once and count at most five wrong', async () => {
    for (const right of [1, 10, 25]) {
      const to = `mixed${right}@example.test`;
      assert.equal(await send(to, 'login'), 200);
      const code = lastCode(server.dataDir, to);
      const answers = await Promise.all(mixed(code, right).map((guess) => call(server, 'POST', '/v1/user/code/login', { channel: 'email', to, code: guess, flag: 1 })));
      assertOnceAndFive(answers);
      assert.equal((await call(server, 'POST', '/v1/user/code/login', { channel: 'email', to, code, flag: 1 })).status, 410, 'gone afterwards');
    }
  });

  it('pwdforget: 50 parallel right and wrong guesses reset at most once and count at most five wrong', async () => {
    const to = 'resetter@example.test';
    const registered = await call(server, 'POST', '/v1/user/register', { username: 'resetter', password: 'correct horse', email: to });
    assert.equal(registered.status, 201);
    // Only a proven address can reset (test/security/accounts-unverified-address.test.ts).
    await server.runtime.accounts.markVerified(registered.body.uid, { channel: 'email', email: to }, Date.now());
    assert.equal(await send(to, 'reset_password'), 200);
    const code = lastCode(server.dataDir, to);
    const answers = await Promise.all(mixed(code, 10).map((guess, i) =>
      call(server, 'POST', '/v1/user/pwdforget', { channel: 'email', to, code: guess, new_password: `new password ${i}` })));
    assertOnceAndFive(answers);
  });

  it('several live codes share one budget of five wrong guesses', async () => {
    const to = 'several@example.test';
    for (const ip of ['198.51.100.2', '198.51.100.3', '198.51.100.4']) assert.equal(await send(to, 'login', ip), 200);
    const codes = [...new Set(readOutbox(server.dataDir).filter((e) => e.to === to).map((e) => e.code))];
    assert.ok(codes.length >= 1 && codes.length <= 3);
    const guesses = Array.from({ length: 50 }, (_, i) => String((Number(codes[0]) + 500_000 + i) % 1_000_000).padStart(6, '0')).filter((g) => !codes.includes(g));
    const answers = await Promise.all(guesses.map((guess) => call(server, 'POST', '/v1/user/code/login', { channel: 'email', to, code: guess, flag: 1 })));
    const counts = tally(answers);
    assert.equal(counts[401], 5, JSON.stringify(counts));
    for (const code of codes) assert.equal((await call(server, 'POST', '/v1/user/code/login', { channel: 'email', to, code, flag: 1 })).status, 410);
  });
}

const redisSkip = await skipUnless('redis');
describe('code guesses race (embedded store)', () => guessSuite(() => ({ rate_limits: codeTestLimits }), async () => {}));
describe('code guesses race (Redis)', { skip: redisSkip }, () => {
  const prefix = uniquePrefix('codeguess');
  guessSuite(() => ({ store: REDIS_URL, store_prefix: prefix, rate_limits: codeTestLimits }), () => deleteRedisKeys(prefix));
});
