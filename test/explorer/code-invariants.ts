/**
 * The one-time code store's promises (docs/design.md §4) as explorer checks, each returning what is
 * wrong, or null. They read the store directly and the answers the guessing clients were given.
 *
 * The record sent before the race is followed step by step until it is gone (used, burnt): a send
 * after that starts a new record with a budget of its own, which these checks leave alone.
 */
import { codeKey, MAX_WRONG_GUESSES } from '../../src/flows/code/code-store.ts';
import { DESTINATION, PURPOSE, type CodeInvariant, type CodeWorld } from './code-world.ts';

interface Lineage {
  /** Answers already looked at. */
  seen: number;
  /** Wrong answers given against the record sent before the race. */
  wrongs: number;
  /** A guess accepted against that record after its fifth wrong answer, if any. */
  lateAcceptance: string | null;
  /** True from the first step at which that record was gone. */
  ended: boolean;
}

const lineages = new WeakMap<CodeWorld, Lineage>();

/**
 * Brings the record's history up to this step: the answers given against it while it lived, and
 * whether it is gone. Every invariant calls it; looking twice at one state changes nothing.
 */
async function follow(world: CodeWorld): Promise<Lineage> {
  let lineage = lineages.get(world);
  if (lineage === undefined) {
    lineage = { seen: 0, wrongs: 0, lateAcceptance: null, ended: false };
    lineages.set(world, lineage);
  }
  for (const answer of world.answers.slice(lineage.seen)) {
    lineage.seen += 1;
    if (lineage.ended) continue;
    const wrongsBefore = world.seededTries + lineage.wrongs;
    if (answer.verdict === 'wrong') lineage.wrongs += 1;
    if (answer.verdict === 'ok' && wrongsBefore >= MAX_WRONG_GUESSES) {
      lineage.lateAcceptance ??= `${answer.protocol} was accepted after ${wrongsBefore} wrong answers`;
    }
  }
  if ((await world.store.get(codeKey(PURPOSE, DESTINATION))) === null) lineage.ended = true;
  return lineage;
}

/** A code works at most once: of all the guesses, one at most is accepted (a used code takes the others with it). */
export const codeWorksOnce: CodeInvariant = async ({ world }) => {
  const accepted = world.answers.filter((answer) => answer.verdict === 'ok');
  return accepted.length <= 1 ? null : `code works once: ${accepted.map((a) => `${a.protocol} (${a.guess})`).join(' and ')} were all accepted`;
};

/**
 * At most five wrong guesses count, in total for all the destination's live codes: no more than
 * five wrong answers against one record, and no code accepted once the fifth was given.
 */
export const atMostFiveWrongGuesses: CodeInvariant = async ({ world }) => {
  const lineage = await follow(world);
  if (lineage.lateAcceptance !== null) return `five wrong guesses: ${lineage.lateAcceptance}`;
  const total = world.seededTries + lineage.wrongs;
  return total <= MAX_WRONG_GUESSES ? null : `five wrong guesses: ${total} wrong answers against one record`;
};

/**
 * Every wrong answer is counted in the record before it is given, and a send never takes a count
 * back: while the record lives, its count is at least the wrong answers given against it.
 */
export const wrongGuessesCounted: CodeInvariant = async ({ world }) => {
  const lineage = await follow(world);
  if (lineage.ended) return null;
  const raw = await world.store.get(codeKey(PURPOSE, DESTINATION));
  const stored = raw === null ? null : (JSON.parse(raw) as { t?: unknown }).t;
  const answered = world.seededTries + lineage.wrongs;
  if (typeof stored !== 'number') return `wrong guesses counted: the record holds no count (${raw})`;
  return stored >= answered ? null : `wrong guesses counted: ${answered} wrong answers given, the record counts ${stored}`;
};

/** A withdrawn code (its delivery failed) is never accepted once the withdrawal returned. */
export const withdrawnCodeDead: CodeInvariant = async ({ world }) => {
  for (const [name, at] of world.withdrawnAt) {
    const code = world.code(name);
    const late = world.answers.slice(at).find((answer) => answer.verdict === 'ok' && answer.guess === code);
    if (late !== undefined) return `withdrawn: ${late.protocol} was let in with ${name}'s code after it was withdrawn`;
  }
  return null;
};
