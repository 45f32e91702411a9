/**
 * Where the CLI takes a password from. A password in argv is readable by every local user (`ps`,
 * /proc/<pid>/cmdline) and lands in shell history, so it comes from a prompt without echo or from
 * stdin (`--password-stdin`); `--password P` still works for scripts written against it, with a
 * one-line warning.
 */
import type { ReadStream } from 'node:tty';

export interface PasswordSources {
  /** The value of `--password`, if given. */
  readonly flag: string | undefined;
  /** `--password-stdin`: the first line of stdin is the password. */
  readonly fromStdin: boolean;
  /** Asked twice on a prompt (a typo would lock the account out). */
  readonly confirm: boolean;
}

/** A refusal of how the password was (not) given: the CLI prints it as one line. */
export class PasswordInputError extends Error {
  override readonly name = 'PasswordInputError';
}

export const ARGV_PASSWORD_WARNING =
  'latchkey: warning: --password is visible to other local users in the process list and stays in shell history; use --password-stdin or the prompt\n';

export async function readPassword(sources: PasswordSources): Promise<string> {
  if (sources.flag !== undefined && sources.fromStdin) throw new PasswordInputError('give the password with --password or --password-stdin, not both');
  if (sources.flag !== undefined) {
    process.stderr.write(ARGV_PASSWORD_WARNING);
    return sources.flag;
  }
  if (sources.fromStdin) return firstLine(await readAll(process.stdin));
  const stdin = process.stdin;
  if (!stdin.isTTY) throw new PasswordInputError('no password: pipe it in with --password-stdin, or run in a terminal to be asked');
  const password = await prompt(stdin, 'Password: ');
  if (sources.confirm && (await prompt(stdin, 'Password again: ')) !== password) throw new PasswordInputError('the passwords do not match');
  return password;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  stream.setEncoding('utf8');
  for await (const chunk of stream) text += String(chunk);
  return text;
}

/** `echo secret | latchkey …` ends with a newline that is not part of the password. */
function firstLine(text: string): string {
  const line = text.split(/\r?\n/, 1)[0] ?? '';
  if (line === '') throw new PasswordInputError('--password-stdin: stdin held no password');
  return line;
}

const ENTER = new Set(['\r', '\n', '\u0004']);
const INTERRUPT = '\u0003';
const BACKSPACE = new Set(['\u007f', '\b']);

/** Reads a line from the terminal with echo off; the prompt goes to stderr, stdout stays for results. */
function prompt(stdin: ReadStream, question: string): Promise<string> {
  // Echo off before the prompt shows: whatever is typed once the prompt is visible must not echo.
  stdin.setRawMode(true);
  process.stderr.write(question);
  stdin.setEncoding('utf8');
  stdin.resume();
  return new Promise((resolve, reject) => {
    let typed = '';
    const finish = (error?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (error === undefined) resolve(typed);
      else reject(error);
    };
    const onData = (chunk: string) => {
      for (const char of chunk) {
        if (char === INTERRUPT) return finish(new PasswordInputError('interrupted'));
        if (ENTER.has(char)) return finish(typed === '' ? new PasswordInputError('no password given') : undefined);
        typed = BACKSPACE.has(char) ? typed.slice(0, -1) : typed + char;
      }
    };
    stdin.on('data', onData);
  });
}
