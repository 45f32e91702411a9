import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { after, describe, it } from 'node:test';
import { hash as argon2Hash } from '@node-rs/argon2';
import { hash as bcryptHash } from 'bcryptjs';
import { checkPasswordPolicy } from '../../src/core/passwords.ts';
import { createPasswordHasher } from '../../src/runtime/password-hasher.ts';
import type { PasswordHasher } from '../../src/ports/password-hasher.ts';
import { LatchkeyError } from '../../src/core/errors.ts';

async function elapsedMs(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

/** The median of several runs, so one slow scheduling hiccup does not decide a timing assertion. */
async function medianMs(runs: number, work: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i += 1) times.push(await elapsedMs(work));
  times.sort((a, b) => a - b);
  return times[Math.floor(runs / 2)] ?? 0;
}

describe('password hasher', () => {
  const hasher: PasswordHasher = createPasswordHasher();
  after(() => hasher.close());

  it('hashes with argon2id at the OWASP parameters and verifies the same password', async () => {
    const hash = await hasher.hash('correct horse battery');
    assert.match(hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    assert.deepEqual(await hasher.verify(hash, 'correct horse battery'), { ok: true, needsRehash: false });
  });

  it('rejects a wrong password', async () => {
    const hash = await hasher.hash('correct horse battery');
    assert.deepEqual(await hasher.verify(hash, 'correct horse batterY'), { ok: false, needsRehash: false });
  });

  it('verifies an imported bcrypt hash ($2a$, $2b$, $2y$) and asks for a rehash', async () => {
    const hash = await bcryptHash('legacy password', 4);
    for (const prefix of ['$2a$', '$2b$', '$2y$']) {
      const imported = prefix + hash.slice(4);
      assert.deepEqual(await hasher.verify(imported, 'legacy password'), { ok: true, needsRehash: true }, prefix);
      assert.equal((await hasher.verify(imported, 'wrong password')).ok, false, prefix);
    }
  });

  it('asks for a rehash of an argon2 hash weaker than configured, or not argon2id', async () => {
    const weak = await argon2Hash('some password', { memoryCost: 8192, timeCost: 1, parallelism: 1 });
    assert.deepEqual(await hasher.verify(weak, 'some password'), { ok: true, needsRehash: true });
    // 1 is Algorithm.Argon2i: a const enum, which type stripping cannot inline.
    const argon2i = await argon2Hash('some password', { algorithm: 1 });
    assert.deepEqual(await hasher.verify(argon2i, 'some password'), { ok: true, needsRehash: true });
    const stronger = await createPasswordHasher({ timeCost: 3 }).hash('some password');
    assert.deepEqual(await hasher.verify(stronger, 'some password'), { ok: true, needsRehash: false });
  });

  it('never verifies a null, unrecognised or corrupt hash', async () => {
    for (const stored of [null, '', 'plaintext', '$argon2id$garbage', '$1$md5crypt$x', '$2a$broken']) {
      assert.deepEqual(await hasher.verify(stored, 'plaintext'), { ok: false, needsRehash: false }, String(stored));
    }
  });

  it('spends comparable time on an unknown user as on a wrong password', async () => {
    const real = await hasher.hash('the real password');
    await hasher.verify(null, 'warm up the dummy hash');
    const wrongPassword = await medianMs(5, () => hasher.verify(real, 'a wrong password'));
    const unknownUser = await medianMs(5, () => hasher.verify(null, 'a wrong password'));
    assert.ok(
      unknownUser >= wrongPassword * 0.3,
      `unknown user took ${unknownUser.toFixed(1)} ms, a real verify ${wrongPassword.toFixed(1)} ms`,
    );
  });
});

describe('password policy', () => {
  it('rejects 7 characters and accepts 8', () => {
    assert.match(checkPasswordPolicy('1234567') ?? '', /at least 8/);
    assert.equal(checkPasswordPolicy('k7#Vq2!m'), null);
    // Eight characters, but the most common eight (test/security/asvs-password-blocklist.test.ts).
    assert.match(checkPasswordPolicy('12345678') ?? '', /common/);
  });

  it('accepts 128 characters and rejects 129', () => {
    assert.equal(checkPasswordPolicy('a'.repeat(128)), null);
    assert.match(checkPasswordPolicy('a'.repeat(129)) ?? '', /at most 128/);
    assert.match(checkPasswordPolicy('a'.repeat(100_000)) ?? '', /at most 128/);
  });

  it('counts an emoji as one character', () => {
    // '😀' is two UTF-16 units: by .length these would be 8 and 129.
    assert.match(checkPasswordPolicy('123456😀') ?? '', /at least 8/);
    assert.equal(checkPasswordPolicy('1234567😀'), null);
    assert.equal(checkPasswordPolicy(`${'a'.repeat(127)}😀`), null);
    assert.match(checkPasswordPolicy(`${'a'.repeat(128)}😀`) ?? '', /at most 128/);
  });

  it('rejects a password of only whitespace', () => {
    assert.match(checkPasswordPolicy(' '.repeat(10)) ?? '', /spaces/);
    assert.match(checkPasswordPolicy('\t \u00a0 \n   ') ?? '', /spaces/);
    assert.equal(checkPasswordPolicy('  pass word  '), null);
  });
});

describe('password hashing concurrency', () => {
  it('runs at most `concurrency` hashes and verifications at once; the others wait their turn', async (t) => {
    const hasher = createPasswordHasher({ concurrency: 1 });
    t.after(() => hasher.close());
    const stored = await hasher.hash('correct horse battery');
    const right = hasher.verify(stored, 'correct horse battery');
    const wrong = hasher.verify(stored, 'wrong horse battery');
    const fresh = hasher.hash('another password');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(hasher.load(), { running: 1, waiting: 2 });
    assert.deepEqual([(await right).ok, (await wrong).ok, typeof (await fresh)], [true, false, 'string']);
    assert.deepEqual(hasher.load(), { running: 0, waiting: 0 });
  });

  it('an unknown user\'s verification (the dummy hash) does not wait on itself at concurrency 1', async (t) => {
    const hasher = createPasswordHasher({ concurrency: 1 });
    t.after(() => hasher.close());
    assert.deepEqual(await hasher.verify(null, 'whatever password'), { ok: false, needsRehash: false });
  });
});

describe('password hashing queue bound', () => {
  it('past `maxQueue` waiting calls a check is refused at once with 503 upstream_unavailable and Retry-After', async (t) => {
    // Slow enough hashes that ten calls made in one tick are all still pending when the refusals come.
    const hasher = createPasswordHasher({ concurrency: 1, maxQueue: 2, memoryCost: 32_768, timeCost: 3 });
    t.after(() => hasher.close());
    const stored = await hasher.hash('correct horse battery');
    const started = performance.now();
    const outcomes = await Promise.all(Array.from({ length: 10 }, () =>
      hasher.verify(stored, 'wrong horse battery').then(
        () => ({ admitted: true, ms: performance.now() - started }),
        (error: unknown) => ({ admitted: false, ms: performance.now() - started, error }),
      )));
    const admitted = outcomes.filter((o) => o.admitted);
    const refused = outcomes.filter((o) => !o.admitted);
    assert.equal(admitted.length, 3, 'one running and two waiting');
    assert.equal(refused.length, 7);
    for (const outcome of refused) {
      assert.ok('error' in outcome);
      assert.ok(outcome.error instanceof LatchkeyError);
      assert.equal(outcome.error.code, 'upstream_unavailable');
      assert.equal(outcome.error.status, 503);
      assert.ok((outcome.error.retryAfter ?? 0) >= 1);
      assert.ok(outcome.ms < Math.min(...admitted.map((o) => o.ms)), 'refused before any admitted check finished');
    }
    assert.deepEqual(hasher.load(), { running: 0, waiting: 0 });
    assert.equal((await hasher.verify(stored, 'correct horse battery')).ok, true, 'admits again once the queue drained');
  });

  it('hash() is bounded by the same queue', async (t) => {
    const hasher = createPasswordHasher({ concurrency: 1, maxQueue: 1, memoryCost: 32_768, timeCost: 3 });
    t.after(() => hasher.close());
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => hasher.hash('some password')));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 2);
    assert.ok(results.every((r) => r.status === 'fulfilled' || (r.reason instanceof LatchkeyError && r.reason.code === 'upstream_unavailable')));
  });
});

describe('password hashing threads', { skip: process.platform !== 'linux' && 'per-thread nice values are a Linux feature' }, () => {
  it('hash below the event loop\'s priority, which keeps its own', async (t) => {
    const hasher = createPasswordHasher({ concurrency: 1 });
    t.after(() => hasher.close());
    await hasher.hash('warm the thread up');
    // Field 19 of /proc/<pid>/task/<tid>/stat is the thread's nice value (after the parenthesised name).
    const niceOf = (tid: string) => Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]?.split(' ')[16]);
    const threads = readdirSync('/proc/self/task');
    assert.equal(niceOf(String(process.pid)), 0, 'the event loop thread');
    assert.ok(threads.some((tid) => niceOf(tid) === 10), `no thread at nice 10 among ${threads.map(niceOf).join(', ')}`);
  });
});
