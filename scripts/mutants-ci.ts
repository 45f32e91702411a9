/**
 * `npm run test:mutants`: the fixed list of named mutants of test/mutation/ci-mutants.ts. Each is
 * a small textual patch of one source file, applied to a COPY of the tree (a temp dir with the
 * repository's files and node_modules linked), and each must make its named test file(s) fail.
 * A mutant that survives is a broken promise the suite would let ship: the run fails.
 *
 *   node scripts/mutants-ci.ts [name…]     only these mutants
 *   node scripts/mutants-ci.ts --baseline  first check the named tests pass on the unmutated copy
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { CI_MUTANTS, type CiMutant } from '../test/mutation/ci-mutants.ts';

const ROOT = resolve(import.meta.dirname, '..');
/** One mutant's named tests may not take longer than this (a hang counts as survived). */
const MUTANT_TIMEOUT_MS = 180_000;

interface Outcome {
  readonly mutant: CiMutant;
  readonly killed: boolean;
  readonly seconds: number;
  readonly note: string;
}

/** The repository's files (tracked and new, not ignored) copied to a temp dir; node_modules linked. */
function copyTree(): string {
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
  const copy = mkdtempSync(join(tmpdir(), 'latchkey-mutants-'));
  for (const file of listed.stdout.split('\0')) {
    if (file === '') continue;
    const target = join(copy, file);
    mkdirSync(dirname(target), { recursive: true });
    try {
      copyFileSync(join(ROOT, file), target);
    } catch (error) {
      // A file deleted in the work tree but still tracked: the copy is of the work tree.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
  return copy;
}

/** The patched text, or an error naming what no longer matches (the source moved on: update the list). */
function patched(source: string, mutant: CiMutant): string {
  let text = source;
  for (const [from, to] of mutant.patch) {
    const at = text.indexOf(from);
    if (at === -1 || text.indexOf(from, at + 1) !== -1) {
      throw new Error(`mutant ${mutant.name}: ${at === -1 ? 'no' : 'more than one'} match in ${mutant.file} for ${JSON.stringify(from)}`);
    }
    text = text.slice(0, at) + to + text.slice(at + from.length);
  }
  return text;
}

function runTests(copy: string, tests: readonly string[]): Promise<{ status: number | null; output: string; timedOut: boolean }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=dot', ...tests], {
      cwd: copy,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output = (output + chunk).slice(-4000); });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output = (output + chunk).slice(-4000); });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      // The whole group: the test runner and any server it started.
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    }, MUTANT_TIMEOUT_MS);
    child.on('close', (status) => {
      clearTimeout(timer);
      done({ status, output, timedOut });
    });
  });
}

async function runMutant(copy: string, mutant: CiMutant): Promise<Outcome> {
  const path = join(copy, mutant.file);
  const original = readFileSync(path, 'utf8');
  const started = performance.now();
  writeFileSync(path, patched(original, mutant));
  try {
    const result = await runTests(copy, mutant.tests);
    const seconds = (performance.now() - started) / 1000;
    if (result.timedOut) return { mutant, killed: false, seconds, note: `timed out after ${MUTANT_TIMEOUT_MS / 1000} s` };
    return { mutant, killed: result.status !== 0, seconds, note: result.status === 0 ? 'named tests passed' : firstFailure(result.output) };
  } finally {
    writeFileSync(path, original);
  }
}

/** The first failure line of the test output, so a kill by a crash is told from a kill by an assertion. */
function firstFailure(output: string): string {
  const line = output.split('\n').map((l) => l.trim()).find((l) => /Error|AssertionError|expected|actual/.test(l));
  return `named tests failed${line === undefined ? '' : `: ${line.slice(0, 160)}`}`;
}

function table(outcomes: readonly Outcome[]): string {
  const rows = outcomes.map((o) => [o.killed ? 'killed' : 'SURVIVED', o.mutant.name, o.mutant.file, o.mutant.tests.join(' '), `${o.seconds.toFixed(1)}s`]);
  const header = ['result', 'mutant', 'file', 'named test(s)', 'time'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line)].join('\n');
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const baseline = args.includes('--baseline');
  const names = args.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !CI_MUTANTS.some((m) => m.name === n));
  if (unknown.length > 0) {
    console.error(`unknown mutant(s): ${unknown.join(', ')}; known: ${CI_MUTANTS.map((m) => m.name).join(', ')}`);
    return 2;
  }
  const selected = names.length === 0 ? CI_MUTANTS : CI_MUTANTS.filter((m) => names.includes(m.name));
  const copy = copyTree();
  try {
    // Every patch must still apply before anything runs: a stale list fails fast and says which.
    for (const mutant of selected) patched(readFileSync(join(copy, mutant.file), 'utf8'), mutant);
    if (baseline) {
      const tests = [...new Set(selected.flatMap((m) => m.tests))];
      const clean = await runTests(copy, tests);
      if (clean.status !== 0) {
        console.error(`the named tests fail on the unmutated tree, so no kill would mean anything:\n${clean.output}`);
        return 1;
      }
    }
    const outcomes: Outcome[] = [];
    for (const mutant of selected) {
      const outcome = await runMutant(copy, mutant);
      outcomes.push(outcome);
      console.log(`${outcome.killed ? 'killed  ' : 'SURVIVED'} ${mutant.name} (${outcome.seconds.toFixed(1)}s): ${outcome.note}`);
    }
    console.log(`\n${table(outcomes)}\n`);
    const survived = outcomes.filter((o) => !o.killed);
    for (const o of survived) console.log(`survived: ${o.mutant.name}: ${o.mutant.breaks}`);
    console.log(`mutants: ${outcomes.length - survived.length} passed, ${survived.length} failed`);
    return survived.length === 0 ? 0 : 1;
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

process.exitCode = await main();
