/**
 * `latchkey serve` stopped by SIGTERM or SIGINT: it stops accepting connections, lets the request
 * in flight finish, closes its stores and exits 0.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { call, startTestServer } from '../support/server.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(REPO_ROOT, 'src', 'cli.ts');
const PASSWORD = 'correct horse';
/** Costly argon2id, so that one login stays in flight for a few hundred milliseconds. */
const SLOW_PASSWORD = { memory_cost: 65_536, time_cost: 20 };

interface ServeProcess {
  readonly child: ChildProcess;
  readonly url: URL;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

/** `node src/cli.ts serve --config <file>` on a free port; resolves once it logged its URL. */
async function startServe(dir: string): Promise<ServeProcess> {
  const configFile = join(dir, 'latchkey.json');
  writeFileSync(configFile, JSON.stringify({ port: 0, metrics: { port: 0 }, data_dir: dir, log_level: 'info', password: SLOW_PASSWORD }));
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('LATCHKEY_')) env[key] = value;
  const child = spawn(process.execPath, [CLI, 'serve', '--config', configFile], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const url = await new Promise<URL>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not start:\n${output}`));
    }, 60_000); // a node takes 10-15 s to start on a loaded machine
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      for (const line of output.split('\n')) {
        if (!line.includes('"latchkey listening"')) continue;
        clearTimeout(timer);
        resolve(new URL((JSON.parse(line) as { url: string }).url));
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code} before listening:\n${output}`));
    });
  });
  return { child, url, exited, output: () => output };
}

/** POSTs JSON on a connection of its own; `sent` resolves once the whole request is written. */
interface Answered {
  readonly status: number;
  readonly body: { readonly token?: unknown };
  /** performance.now() when the whole answer had arrived. */
  readonly at: number;
}

function post(url: URL, path: string, body: unknown): { sent: Promise<void>; answered: Promise<Answered> } {
  let onSent: () => void = () => {};
  const sent = new Promise<void>((resolve) => (onSent = resolve));
  const answered = new Promise<Answered>((resolve, reject) => {
    const req = request(new URL(path, url), { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Answered['body'], at: performance.now() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('finish', onSent);
    req.end(JSON.stringify(body));
  });
  return { sent, answered };
}

/**
 * Resolves once the node has read a request already written to it. The node accepts connections in
 * the order they came and, each time it looks, reads every socket that has data: it reads a second
 * request, sent on a new connection after the first was written, no earlier than the first, and its
 * answer comes later still.
 */
async function readByNode(url: URL): Promise<void> {
  const probe = await fetch(new URL('/healthz', url), { headers: { connection: 'close' } });
  await probe.arrayBuffer();
  assert.equal(probe.status, 200);
}

/** Resolves with the time a TCP connect to the port is first refused; rejects after `timeoutMs`. */
async function refusedAt(url: URL, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const refused = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: url.hostname, port: Number(url.port) });
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
    });
    if (refused) return performance.now();
    await sleep(5);
  }
  throw new Error(`${url.host} still accepted connections after ${timeoutMs} ms`);
}

describe('graceful shutdown of latchkey serve', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal}: the in-flight login completes with 200, new connections are refused, the process exits 0`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'latchkey-shutdown-'));
      const server = await startServe(dir);
      try {
        // Registering leaves an idle keep-alive connection behind, which must not hold the exit up.
        const registered = await fetch(new URL('/v1/user/register', server.url), {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: PASSWORD }),
        });
        assert.equal(registered.status, 201, await registered.text());

        const login = post(server.url, '/v1/user/login', { username: 'alice', password: PASSWORD, flag: 1 });
        await login.sent;
        // Signalled before the node has read the login, the node closes that connection as idle: a
        // fixed pause was not always long enough on a loaded machine ("socket hang up").
        await readByNode(server.url);
        const signalledAt = performance.now();
        server.child.kill(signal);

        const refused = await refusedAt(server.url, 3000);
        const answer = await login.answered;
        const exit = await Promise.race([server.exited, sleep(5000, null, { ref: false })]);

        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        const token = answer.body.token;
        assert.ok(typeof token === 'string' && /^[A-Za-z0-9_-]{43}$/.test(token), 'the drained login answers a token');
        assert.ok(answer.at > signalledAt, 'the login was still in flight when the signal came');
        assert.ok(refused < answer.at, 'new connections were refused while the in-flight login was still running');
        assert.ok(exit !== null, `the process exits within 5 s of ${signal}\n${server.output()}`);
        assert.deepEqual(exit, { code: 0, signal: null }, server.output());
        assert.match(server.output(), /shutting down/);
        // SQLite deletes the WAL file when the last connection to the database closes cleanly.
        assert.deepEqual(readdirSync(dir).filter((name) => name.startsWith('latchkey.db')), ['latchkey.db'], 'the store and the database were closed');

        const restarted = await startTestServer({ data_dir: dir });
        try {
          const current = await call(restarted, 'GET', '/v1/user/current', undefined, token);
          assert.equal(current.status, 200, 'the session the drained login issued was stored before the database closed');
        } finally {
          await restarted.stop();
        }
      } finally {
        if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
        await server.exited;
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
