/**
 * The one-time code store (src/flows/code/code-store.ts) under every interleaving: the real
 * CodeStore's issue and attempt over the scheduled Kv, so every store call is a choice point. A code
 * works at most once, and at most five wrong guesses count against a destination's live codes in
 * total (up to MAX_LIVE_CODES of them share one budget; a send never adds tries). Each check is
 * shown to catch a broken store: a mutant of the production file (mutant.ts).
 */
import { describe, it } from 'node:test';
import { loadMutant, srcFile } from './mutant.ts';
import { atMostFiveWrongGuesses, codeWorksOnce, withdrawnCodeDead, wrongGuessesCounted } from './code-invariants.ts';
import { exploreCodes, guess, send, withdraw, WRONG_GUESS } from './code-world.ts';
import { assertEveryInterleavingHolds, assertViolationFound } from './verdicts.ts';

const invariants = [codeWorksOnce, atMostFiveWrongGuesses, wrongGuessesCounted, withdrawnCodeDead];

type CodeStoreModule = typeof import('../../src/flows/code/code-store.ts');
const codeStoreMutant = async (original: string, broken: string): Promise<CodeStoreModule['CodeStore']> =>
  (await loadMutant<CodeStoreModule>(srcFile('flows/code/code-store.ts'), [[original, broken]])).CodeStore;

/** octo-server's bug: a right guess reads the code, then deletes it; two readers both get in. */
const getThenDel = () => codeStoreMutant(
  "if (await this.#kv.compareAndDelete(key, stored)) return 'ok';",
  "await this.#kv.del(key);\n        return 'ok';",
);

/** A wrong guess written back with a blind SET: concurrent wrong guesses count once between them. */
const blindCount = () => codeStoreMutant(
  ': await this.#kv.compareAndSet(key, stored, JSON.stringify({ ...record, t: tries }), { keepTtl: true });',
  ': await this.#kv.set(key, JSON.stringify({ ...record, t: tries }), { xx: true, keepTtl: true });',
);

/** A send that starts the count afresh: a stranger's sends buy the guesser five more tries each. */
const sendResetsCount = () => codeStoreMutant('t: earlier?.t ?? 0 }', 't: 0 }');

/** A withdrawal writing the remaining codes back with a blind SET: what changed since its read is lost. */
const blindWithdraw = () => codeStoreMutant(
  ': await this.#kv.compareAndSet(key, stored, JSON.stringify({ ...record, c: rest }), { keepTtl: true });',
  ': await this.#kv.set(key, JSON.stringify({ ...record, c: rest }), { xx: true, keepTtl: true });',
);

/** A withdrawal that gives up when its compare-and-set loses a race, leaving the undelivered code live. */
const withdrawOnce = () => codeStoreMutant('      if (changed) return;', '      return;');

/** The fifth wrong guess keeps the codes instead of burning them. */
const noBurn = () => codeStoreMutant('tries >= MAX_WRONG_GUESSES', 'tries > MAX_WRONG_GUESSES');

describe('the one-time code store under every interleaving', () => {
  it('the same code typed twice at once, and a wrong guess: it is accepted once', async (t) => {
    const result = await exploreCodes({
      sent: ['a'],
      protocols: { first: guess('a'), second: guess('a'), wrong: guess(WRONG_GUESS) },
      invariants,
      maxRuns: 5_000,
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('two of three live codes typed at once while another is sent: one login, the others die with it', async (t) => {
    const result = await exploreCodes({
      sent: ['a', 'b', 'c'],
      protocols: { typesA: guess('a'), typesC: guess('c'), resend: send },
      invariants,
      maxRuns: 5_000,
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('the last two of five wrong guesses race a send: the new code shares the budget, which then burns them all', async (t) => {
    const result = await exploreCodes({
      sent: ['a', 'b'],
      wrongBefore: 3,
      protocols: { wrong1: guess(WRONG_GUESS), wrong2: guess(WRONG_GUESS), resend: send },
      invariants,
      maxRuns: 5_000,
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('the fifth wrong guess races the right one and a send: the right one gets in only before the fifth', async (t) => {
    const result = await exploreCodes({
      sent: ['a', 'b'],
      wrongBefore: 4,
      protocols: { wrong: guess(WRONG_GUESS), right: guess('a'), resend: send },
      invariants,
      maxRuns: 5_000,
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('three wrong guesses at once against a budget of two: two count, the codes burn', async (t) => {
    const result = await exploreCodes({
      sent: ['a'],
      wrongBefore: 3,
      protocols: { wrong1: guess(WRONG_GUESS), wrong2: guess(WRONG_GUESS), wrong3: guess(WRONG_GUESS) },
      invariants,
      maxRuns: 5_000,
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('an undeliverable code is withdrawn while it, another code and a wrong guess are typed: it never works after', async (t) => {
    const result = await exploreCodes({
      sent: ['a', 'b'],
      wrongBefore: 2,
      protocols: { withdrawB: withdraw('b'), typesB: guess('b'), wrong: guess(WRONG_GUESS) },
      invariants,
      maxRuns: 5_000,
    });
    assertEveryInterleavingHolds(t, result);
  });
});

describe('the explorer finds the race in a broken code store', () => {
  it('a code consumed as GET-then-DEL is accepted twice', async (t) => {
    const result = await exploreCodes({
      codeStore: await getThenDel(),
      sent: ['a'],
      protocols: { first: guess('a'), second: guess('a') },
      invariants: [codeWorksOnce],
      maxRuns: 5_000,
    });
    assertViolationFound(t, result, /code works once: first \(\d+\) and second \(\d+\) were all accepted/);
  });

  it('wrong guesses counted with a blind SET lose counts', async (t) => {
    const result = await exploreCodes({
      codeStore: await blindCount(),
      sent: ['a'],
      protocols: { wrong1: guess(WRONG_GUESS), wrong2: guess(WRONG_GUESS) },
      invariants: [wrongGuessesCounted],
      maxRuns: 5_000,
    });
    assertViolationFound(t, result, /wrong guesses counted: 2 wrong answers given, the record counts 1/);
  });

  it('a send that resets the count gives back the wrong guesses already made', async (t) => {
    const result = await exploreCodes({
      codeStore: await sendResetsCount(),
      sent: ['a'],
      wrongBefore: 3,
      protocols: { wrong: guess(WRONG_GUESS), resend: send },
      invariants: [wrongGuessesCounted],
      maxRuns: 5_000,
    });
    // A count lost to a send shows in every order, the race-free one included.
    assertViolationFound(t, result, /wrong guesses counted: \d wrong answers given, the record counts \d/, { raceOnly: false });
  });

  it('codes not burnt by the fifth wrong guess take a sixth and then let the right one in', async (t) => {
    const result = await exploreCodes({
      codeStore: await noBurn(),
      sent: ['a'],
      wrongBefore: 3,
      protocols: { wrong1: guess(WRONG_GUESS), wrong2: guess(WRONG_GUESS), right: guess('a') },
      invariants: [atMostFiveWrongGuesses],
      maxRuns: 5_000,
    });
    assertViolationFound(t, result, /five wrong guesses: right was accepted after 5 wrong answers/, { raceOnly: false });
  });

  it('a withdrawal written back with a blind SET takes back a wrong guess counted meanwhile', async (t) => {
    const result = await exploreCodes({
      codeStore: await blindWithdraw(),
      sent: ['a', 'b'],
      protocols: { withdrawB: withdraw('b'), wrong: guess(WRONG_GUESS) },
      invariants: [wrongGuessesCounted],
      maxRuns: 5_000,
    });
    assertViolationFound(t, result, /wrong guesses counted: 1 wrong answers given, the record counts 0/);
  });

  it('a withdrawal that gives up on a lost compare-and-set leaves the withdrawn code working', async (t) => {
    const result = await exploreCodes({
      codeStore: await withdrawOnce(),
      sent: ['a', 'b'],
      protocols: { withdrawB: withdraw('b'), wrong: guess(WRONG_GUESS), typesB: guess('b') },
      invariants: [withdrawnCodeDead],
      maxRuns: 5_000,
    });
    assertViolationFound(t, result, /withdrawn: typesB was let in with b's code after it was withdrawn/);
  });
});
