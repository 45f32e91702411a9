/** Runs `node src/cli.ts …` (or another script) as an operator would, with only the given LATCHKEY_* variables. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(REPO_ROOT, 'src', 'cli.ts');

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  /** LATCHKEY_* variables (or any others) for the run; the caller's own LATCHKEY_* never leak in. */
  readonly env?: Record<string, string>;
  readonly script?: string;
  /** Written to the CLI's stdin (then closed): `--password-stdin`. */
  readonly input?: string;
  /** Ends the run with SIGTERM after this long (for a command that would otherwise run on, `serve`). */
  readonly timeoutMs?: number;
}

export function runCliWith(args: readonly string[], { env = {}, script = CLI, input = '', timeoutMs }: CliOptions = {}): Promise<CliRun> {
  const inherited: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('LATCHKEY_')) inherited[key] = value;
  const child = spawn(process.execPath, [script, ...args], {
    cwd: REPO_ROOT, env: { ...inherited, ...env }, stdio: ['pipe', 'pipe', 'pipe'], ...(timeoutMs === undefined ? {} : { timeout: timeoutMs }),
  });
  // Closed at once without input: what `< /dev/null` gives, never a terminal.
  child.stdin.end(input);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `input`, when given, is written to the CLI's stdin (then closed): `--password-stdin`. */
export function runLatchkeyCli(args: readonly string[], env: Record<string, string> = {}, script = CLI, input?: string): Promise<CliRun> {
  return runCliWith(args, { env, script, ...(input === undefined ? {} : { input }) });
}

export function describeRun(run: CliRun): string {
  return `exit ${run.code}\n--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`;
}
