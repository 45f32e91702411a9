/**
 * One spelling per username. Without this, `ａｌｉｃｅ` (fullwidth), `alice` and an `é` typed as
 * `e` + combining accent were three accounts that look the same in every IM contact list, and
 * `аlice` with a Cyrillic `а` was a fourth.
 */

// The stored form and the unique key are the account store's contract (ports/accounts.ts): the
// repository keys by them on write and lookup, and callers compare by the same.
export { normalizeUsername, usernameKey } from '../ports/accounts.ts';

/**
 * Scripts whose letters pass for one another (Latin `a`, Cyrillic `а`, Greek `α`; Latin `o`,
 * Armenian `օ`, ...) plus the other common scripts, so that any two of them in one name are seen.
 */
const SCRIPTS = [
  'Latin', 'Cyrillic', 'Greek', 'Armenian', 'Georgian', 'Cherokee', 'Coptic', 'Hebrew', 'Arabic',
  'Devanagari', 'Bengali', 'Tamil', 'Telugu', 'Thai', 'Lao', 'Ethiopic', 'Han', 'Hiragana', 'Katakana',
  'Hangul', 'Bopomofo',
].map((name) => ({ name, pattern: new RegExp(`^\\p{Script=${name}}$`, 'u') }));

/**
 * Script mixes that real names use (Unicode TS #39, "highly restrictive"): Japanese writes Han,
 * Hiragana and Katakana together, Korean Han and Hangul, Chinese Han and Bopomofo, each also with
 * Latin letters.
 */
const ALLOWED_MIXES = [
  new Set(['Latin', 'Han', 'Hiragana', 'Katakana']),
  new Set(['Latin', 'Han', 'Hangul']),
  new Set(['Latin', 'Han', 'Bopomofo']),
];

/** The scripts of a name's letters; digits, `_`, `.`, `-` and combining marks belong to none. */
function scriptsOf(username: string): Set<string> {
  const scripts = new Set<string>();
  for (const char of username) {
    if (!/\p{L}/u.test(char)) continue;
    scripts.add(SCRIPTS.find((script) => script.pattern.test(char))?.name ?? 'Other');
  }
  return scripts;
}

/** Null when the (normalised) username is acceptable, else why not. */
export function usernameProblem(username: string): string | null {
  const scripts = scriptsOf(username);
  if (scripts.size <= 1) return null;
  if (ALLOWED_MIXES.some((mix) => [...scripts].every((script) => mix.has(script)))) return null;
  return 'username mixes letters of different scripts (such as Latin and Cyrillic)';
}
