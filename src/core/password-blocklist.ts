/**
 * Passwords nobody should be allowed to choose (ASVS 5.0 §6.2.4 and §6.2.11, NIST SP 800-63B
 * §5.1.1.2): the most common passwords seen in breaches, and words from this very context — the
 * service's name and the account's own username, name and email — with only digits or symbols
 * around them ("latchkey2024!", "alice1234"). A guesser tries exactly these first, and no amount
 * of hashing or throttling helps an account whose password is in the first hundred guesses.
 *
 * The common list is zxcvbn's ranked breach corpus (@zxcvbn-ts/language-common): every entry long
 * enough to pass the length rule is refused, about 18,000 of them, well past the 3,000 required.
 */
import { dictionary } from '@zxcvbn-ts/language-common';

/** The words of this deployment that a password must not be built on (docs/security.md). */
export const SERVICE_WORDS: readonly string[] = ['latchkey', 'wukongim', 'tangsengdaodao', 'octoserver'];

const CONTEXT_WORD_MIN_LENGTH = 4;

let common: ReadonlySet<string> | undefined;

function commonPasswords(minLength: number): ReadonlySet<string> {
  // Built on first use: the list costs ~50 ms to decompress, which only password-setting pays.
  common ??= new Set(dictionary['passwords-common'].filter((word) => [...word].length >= minLength));
  return common;
}

/** Lower case, compatibility-folded: `Ｐａｓｓｗｏｒｄ１` is `password1`. */
function fold(value: string): string {
  return value.normalize('NFKC').toLowerCase();
}

/**
 * Why `password` may not be chosen, or null. `context` holds the account's own words (username,
 * display name, email); the service's words are always added.
 */
export function blockedPasswordReason(password: string, minLength: number, context: readonly string[] = []): string | null {
  const folded = fold(password);
  if (commonPasswords(minLength).has(folded)) return 'password is one of the most common passwords; choose another';
  const words = [...SERVICE_WORDS, ...context.flatMap(contextWords)];
  for (const word of words) {
    if (word.length < CONTEXT_WORD_MIN_LENGTH || !folded.includes(word)) continue;
    // What is left once the word is taken out: digits and symbols only means a derivative.
    if (!/\p{L}/u.test(folded.split(word).join(''))) return 'password must not be built on the username, name, email or service name';
  }
  return null;
}

/** `Alice.Smith@example.com` gives `alice.smith@example.com`, `alice.smith`, `alice`, `smith`. */
function contextWords(value: string): string[] {
  const folded = fold(value).trim();
  if (folded === '') return [];
  const local = folded.split('@')[0] ?? folded;
  return [folded, local, ...local.split(/[^\p{L}\p{N}]+/u)].filter((word) => word !== '');
}
