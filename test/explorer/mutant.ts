/**
 * A production module with one deliberate bug in it, for the broken-variant tests: the real source
 * file with exact text replacements, written to a temporary file whose relative imports point back
 * into src/. So the mutant is the production code but for the bug (not a re-implementation in test
 * code), and it shares every other module — LatchkeyError, the Kv keys — with the real one.
 *
 * Each replacement must match exactly once: when the production code is edited so that a mutant no
 * longer applies, its test fails loudly instead of quietly exploring the unbroken code.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';

export type Replacement = readonly [original: string, broken: string];

let directory: string | null = null;
let made = 0;

function mutantDirectory(): string {
  if (directory === null) {
    const created = mkdtempSync(join(tmpdir(), 'latchkey-mutant-'));
    directory = created;
    process.on('exit', () => rmSync(created, { recursive: true, force: true }));
  }
  return directory;
}

/** The source of `module` with `replacements` applied, its relative imports made absolute. */
export function mutantSource(module: URL, replacements: readonly Replacement[]): string {
  let source = readFileSync(module, 'utf8');
  for (const [original, broken] of replacements) {
    const count = source.split(original).length - 1;
    if (count !== 1) throw new Error(`mutant of ${basename(module.pathname)}: expected one match of ${JSON.stringify(original)}, found ${count}`);
    source = source.replace(original, () => broken);
  }
  return source.replace(/(from\s+|import\s*\(\s*|import\s+)'(\.\.?\/[^']+)'/g, (_, lead: string, specifier: string) => `${lead}'${new URL(specifier, module).href}'`);
}

/**
 * Writes the mutant of `module` (a file under src/, as a URL) and returns its URL: another mutant
 * can import it in place of the original (replace the relative specifier by this URL).
 */
export function writeMutant(module: URL, replacements: readonly Replacement[]): string {
  const file = join(mutantDirectory(), `${basename(module.pathname, '.ts')}.mutant${++made}.mts`);
  writeFileSync(file, mutantSource(module, replacements));
  return pathToFileURL(file).href;
}

/** Imports the mutant of `module` (a file under src/, as a URL). */
export async function loadMutant<M>(module: URL, replacements: readonly Replacement[]): Promise<M> {
  const loaded: M = await import(writeMutant(module, replacements));
  return loaded;
}

/** A file under src/, as a URL (from test/explorer/). */
export const srcFile = (path: string): URL => new URL(`../../src/${path}`, import.meta.url);
