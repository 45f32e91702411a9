/**
 * `latchkey user create` in a terminal asks for the password twice without echoing it. The terminal
 * is a real pseudo-terminal (util-linux `script`); the test types only once the prompt shows, as a
 * person does.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const PASSWORD = 'correct horse battery';
const hasScript = spawnSync('script', ['--version']).status === 0;

const dir = mkdtempSync(join(tmpdir(), 'latchkey-prompt-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Types `answers` one by one, each once `prompts[i]` has appeared; returns everything the terminal showed. */
async function inTerminal(command: string, prompts: readonly string[], answers: readonly string[]): Promise<{ code: number | null; screen: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('LATCHKEY_')));
  const child = spawn('script', ['-qec', command, '/dev/null'], { env: { ...env, LATCHKEY_DATA_DIR: dir }, stdio: ['pipe', 'pipe', 'pipe'] });
  let screen = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (screen += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const shown = async (text: string, from: number) => {
    const started = performance.now();
    while (screen.indexOf(text, from) === -1) {
      // The command starts first: 10-15 s on a loaded machine.
      if (performance.now() - started > 60_000) assert.fail(`"${text}" never shown:\n${screen}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return screen.indexOf(text, from) + text.length;
  };
  let from = 0;
  for (const [index, prompt] of prompts.entries()) {
    from = await shown(prompt, from);
    child.stdin.write(`${answers[index] ?? ''}\r`);
  }
  const code = await exited;
  child.stdin.end();
  return { code, screen };
}

describe('the password prompt', { skip: hasScript ? false : 'util-linux `script` is not installed' }, () => {
  it('asks twice, echoes nothing, and creates the account', async () => {
    const run = await inTerminal(`${process.execPath} ${CLI} user create --username tty`, ['Password: ', 'Password again: '], [PASSWORD, PASSWORD]);
    assert.equal(run.code, 0, run.screen);
    assert.ok(!run.screen.includes(PASSWORD.slice(0, 7)), `the password was echoed:\n${run.screen}`);
    assert.match(run.screen, /[0-9a-f]{32}/);
  });

  it('two different answers create nothing', async () => {
    const run = await inTerminal(`${process.execPath} ${CLI} user create --username typo`, ['Password: ', 'Password again: '], [PASSWORD, `${PASSWORD}x`]);
    assert.equal(run.code, 1, run.screen);
    assert.match(run.screen, /latchkey: the passwords do not match/);
    assert.ok(!run.screen.includes(PASSWORD.slice(0, 7)));
  });
});
