/**
 * Start-up tells the truth: a Redis or PostgreSQL that does not answer ends `latchkey serve` (and
 * every command) with one line and exit 1 within 10 s, never "listening"; `serve --wait` keeps
 * trying, one log line per attempt, and starts once the store answers.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { describeRun, type CliRun } from '../support/cli-run.ts';
import { freePort, skipUnlessRedisServer, startRedisServer } from '../support/processes.ts';

const START_LIMIT_MS = 10_000;
const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-startup-'));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const serveEnv = () => ({ LATCHKEY_DATA_DIR: tempDir(), LATCHKEY_PORT: '0', LATCHKEY_METRICS_PORT: '0' });

/** A run that is killed past the limit (a node that "started" anyway would run until stopped). */
async function timedRun(args: string[], env: Record<string, string>): Promise<CliRun & { ms: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...withoutLatchkeyVariables(), ...env }, stdio: ['ignore', 'pipe', 'pipe'], timeout: START_LIMIT_MS + 5000 });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  return { code, stdout, stderr, ms: performance.now() - started };
}

function withoutLatchkeyVariables(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('LATCHKEY_')));
}

function assertRefusedAtStart(run: CliRun & { ms: number }, line: RegExp): void {
  assert.equal(run.code, 1, describeRun(run));
  assert.ok(run.ms < START_LIMIT_MS, `took ${Math.round(run.ms)} ms`);
  assert.equal(run.stderr.trimEnd().split('\n').length, 1, `one line on stderr:\n${run.stderr}`);
  assert.match(run.stderr, line);
  assert.ok(!run.stdout.includes('listening'), `never "listening":\n${run.stdout}`);
  assert.ok(!/\bat .*\.ts:\d+/.test(run.stdout + run.stderr), 'no stack trace');
}

describe('a store that does not answer at start', { concurrency: 2 }, () => {
  it('Redis on an unused loopback port: serve prints one line naming the store and exits 1 within 10 s', async () => {
    const port = await freePort();
    const run = await timedRun(['serve'], { ...serveEnv(), LATCHKEY_STORE: `redis://:hunter2@127.0.0.1:${port}` });
    assertRefusedAtStart(run, new RegExp(`^latchkey: the session store redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port} does not answer\\n$`));
  });

  it('PostgreSQL on an unused loopback port: serve prints one line naming the database and exits 1 within 10 s', async () => {
    const port = await freePort();
    const run = await timedRun(['serve'], { ...serveEnv(), LATCHKEY_DB: `postgres://postgres:hunter2@127.0.0.1:${port}/none` });
    assertRefusedAtStart(run, new RegExp(`^latchkey: the account database postgres://postgres:\\*\\*\\*@127\\.0\\.0\\.1:${port}/none does not answer \\(connect ECONNREFUSED`));
    assert.ok(!run.stderr.includes('hunter2'));
  });

  it('the operator commands refuse the same way', async () => {
    const port = await freePort();
    for (const args of [['user', 'ban', 'someone'], ['audit', 'tail']]) {
      const run = await timedRun(args, { LATCHKEY_DATA_DIR: tempDir(), LATCHKEY_STORE: `redis://127.0.0.1:${port}` });
      assertRefusedAtStart(run, /^latchkey: the session store redis:\/\/127\.0\.0\.1:\d+ does not answer\n$/);
    }
  });
});

describe('serve --wait', { skip: skipUnlessRedisServer() }, () => {
  it('logs one line per attempt while Redis is down, then starts once it answers', async () => {
    const redis = await startRedisServer();
    await redis.stop();
    const child = spawn(process.execPath, [CLI, 'serve', '--wait'], {
      env: { ...withoutLatchkeyVariables(), ...serveEnv(), LATCHKEY_STORE: redis.url, LATCHKEY_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const until = async (what: string, seen: () => boolean, limitMs: number) => {
      const started = performance.now();
      while (!seen()) {
        if (performance.now() - started > limitMs) assert.fail(`${what} not seen within ${limitMs} ms:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    const attempts = () => output.split('\n').filter((line) => line.includes('does not answer; trying again (--wait)'));
    try {
      // The process starts first: 10-15 s on a loaded machine.
      await until('two attempts', () => attempts().length >= 2, 60_000);
      assert.ok(!output.includes('latchkey listening'));
      assert.ok(attempts().every((line) => JSON.parse(line).level === 40), 'each attempt is one warning line');
      await redis.restart();
      await until('"latchkey listening"', () => output.includes('"latchkey listening"'), 60_000);
    } finally {
      child.kill('SIGTERM');
      await exited;
      await redis.stop();
    }
  });
});
