import type { CodePurpose } from '../../ports/sender.ts';
import { LatchkeyError } from '../../core/errors.ts';
import type { Destination } from '../../core/destinations.ts';
import type { CodeStore, Verdict } from './code-store.ts';

export const wrongCode = (): LatchkeyError => new LatchkeyError('invalid_credentials', 'wrong code');
/** 410 rather than 401 once a code is gone (burnt by five wrong guesses, used, or expired): ask for a new one. */
export const codeGone = (): LatchkeyError =>
  new LatchkeyError('expired', 'the code has expired, was already used, or had too many wrong guesses; request a new one');

/**
 * Consumes a code of one of `purposes` (code login accepts a login or a register code), trying them
 * in order. A guess counts as a wrong try against every code it was checked against, so having two
 * codes out never buys more than five attempts. Returns the purpose whose code it was.
 */
export async function consumeCode(
  codes: CodeStore,
  purposes: readonly CodePurpose[],
  destination: Destination,
  guess: string,
): Promise<CodePurpose> {
  const verdicts: Verdict[] = [];
  for (const purpose of purposes) {
    const verdict = await codes.attempt(purpose, destination, guess);
    if (verdict === 'ok') return purpose;
    verdicts.push(verdict);
  }
  throw verdicts.includes('wrong') ? wrongCode() : codeGone();
}
