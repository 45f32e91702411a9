/**
 * Real processes for tests and benchmarks: latchkey nodes started as `latchkey serve` child
 * processes (so several nodes share nothing but their stores, as in production), and private
 * `redis-server`s that a test may stop and restart without touching anyone else's keys.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(REPO_ROOT, 'src', 'cli.ts');
const STOP_GRACE_MS = 5000;
const KEEP_OUTPUT_LINES = 200;

const inCi = process.env.CI === 'true' || process.env.CI === '1';

// ---------------------------------------------------------------------------------------------
// child processes in general

/** The last lines a child wrote, for the message of a test that fails because of it. */
class OutputTail {
  readonly #lines: string[] = [];
  #partial = '';

  push(chunk: string, onLine?: (line: string) => void): void {
    const text = this.#partial + chunk;
    const lines = text.split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines) {
      this.#lines.push(line);
      if (this.#lines.length > KEEP_OUTPUT_LINES) this.#lines.shift();
      onLine?.(line);
    }
  }

  toString(): string {
    return [...this.#lines, this.#partial].join('\n').trim();
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** SIGTERM, then SIGKILL if the child has not exited after `graceMs`. Resolves once it has exited. */
async function terminate(child: ChildProcess, graceMs = STOP_GRACE_MS): Promise<void> {
  const done = exited(child);
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(timer);
}

/** A port that was free a moment ago (the OS picked it for a listener on port 0, then closed it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The child's environment without LATCHKEY_* variables: the config file is the whole config. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('LATCHKEY_')) env[key] = value;
  return { ...env, ...extra };
}

// ---------------------------------------------------------------------------------------------
// HTTP servers in child processes (latchkey nodes, the benchmark's bare server)

export interface HttpProcess {
  readonly url: string;
  readonly pid: number;
  /** Still running? */
  alive(): boolean;
  /** Its last lines of stdout and stderr. */
  output(): string;
  /** SIGTERM (graceful drain), SIGKILL after 5 s; resolves once it has exited. Safe to call twice. */
  stop(): Promise<void>;
}

export type LatchkeyProcess = HttpProcess;

export interface HttpProcessOptions {
  /** What it is, for error messages. */
  readonly name: string;
  /** Arguments after `node`: a script and its arguments. */
  readonly args: readonly string[];
  /** `msg` of the JSON stdout line that carries the server's `url`. */
  readonly listeningMessage: string;
  /** Ready once GET on this path answers 200. */
  readonly healthPath: string;
  /** How long to wait for the listening line and a 200. Default 60 s. */
  readonly readyTimeoutMs?: number;
  /** Extra environment (LATCHKEY_* from the parent is never passed on). */
  readonly env?: Record<string, string>;
  /** Runs once the process has exited after stop() or a failed start. */
  readonly cleanup?: () => void;
}

/**
 * Starts `node <args>` (cwd: the repository), reads its URL from a JSON log line (so it can bind
 * port 0) and waits until `healthPath` answers 200.
 */
export async function startHttpProcess(options: HttpProcessOptions): Promise<HttpProcess> {
  const child = spawn(process.execPath, [...options.args], {
    cwd: REPO_ROOT,
    env: childEnv(options.env ?? {}),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail = new OutputTail();
  const listening = new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) =>
      tail.push(chunk, (line) => {
        const url = listeningUrl(line, options.listeningMessage);
        if (url !== null) resolve(url);
      }),
    );
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => tail.push(chunk));
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`${options.name} exited before listening (code ${code}, signal ${signal})`)));
  });
  // A rejection after the server is up (it exits later) must not become an unhandled one.
  listening.catch(() => {});

  let stopping: Promise<void> | null = null;
  const stop = () => (stopping ??= terminate(child).then(() => options.cleanup?.()));
  // A node took 9-14 s to start on a 2-core machine under a load of 20; 20 s was too close.
  const timeoutMs = options.readyTimeoutMs ?? 60_000;
  try {
    const url = await withTimeout(listening, timeoutMs, `${options.name} did not log "${options.listeningMessage}"`);
    await untilHealthy(url + options.healthPath, timeoutMs);
    return {
      url,
      pid: child.pid ?? -1,
      alive: () => child.exitCode === null && child.signalCode === null,
      output: () => tail.toString(),
      stop,
    };
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\n--- ${options.name} output ---\n${tail.toString()}`, { cause: error });
  }
}

/**
 * Starts a latchkey node: `node src/cli.ts serve --config <tmp file>` with `config` (the JSON
 * config file's keys). It binds a port the OS picks (port 0, unless the config names one) and
 * logs its URL. Its data directory and config file live in a temporary folder removed by stop(),
 * unless the config names `data_dir`.
 */
export async function startLatchkey(config: Record<string, unknown>, options: Pick<HttpProcessOptions, 'readyTimeoutMs' | 'env'> = {}): Promise<LatchkeyProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-node-'));
  const configPath = join(dir, 'config.json');
  // The URL is read from an info line, so the level must let it through (requests are not logged).
  const logLevel = config.log_level === 'debug' || config.log_level === 'trace' ? config.log_level : 'info';
  writeFileSync(configPath, JSON.stringify({ port: 0, metrics: { port: 0 }, data_dir: dir, ...config, host: '127.0.0.1', log_level: logLevel }));
  return startHttpProcess({
    ...options,
    name: 'latchkey',
    args: [CLI, 'serve', '--config', configPath],
    listeningMessage: 'latchkey listening',
    healthPath: '/healthz',
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  });
}

function listeningUrl(line: string, message: string): string | null {
  if (!line.startsWith('{')) return null;
  try {
    const entry = JSON.parse(line) as { msg?: unknown; url?: unknown };
    return entry.msg === message && typeof entry.url === 'string' ? entry.url : null;
  } catch {
    return null;
  }
}

async function untilHealthy(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // not answering yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    await sleep(50);
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// private redis-server

export interface RedisServerProcess {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly pid: number;
  output(): string;
  /** Stops it (SIGTERM, SIGKILL after 5 s). It keeps nothing: no RDB, no AOF. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  restart(): Promise<void>;
  /** SIGSTOP: connections stay open but nothing answers (a hung server, not a dead one). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

/**
 * Returns false (run) when `redis-server` can be started, else a skip message. In CI (CI=true) a
 * missing binary throws instead, failing the suite, like skipUnless() in services.ts.
 */
export function skipUnlessRedisServer(): false | string {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.status === 0) return false;
  const message = 'SKIPPED: redis-server is not on PATH — install Redis 7 to run this suite';
  if (inCi) throw new Error(`${message} (required in CI)`);
  process.stderr.write(`\n*** ${message} ***\n\n`);
  return message;
}

/** Starts a private, non-persistent `redis-server` on a free loopback port. */
export async function startRedisServer(): Promise<RedisServerProcess> {
  let lastError: unknown;
  // The port is free when picked but could be taken before redis binds it: try another one then.
  for (let tries = 0; tries < 3; tries += 1) {
    const port = await freePort();
    try {
      return await redisOnPort(port);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

async function redisOnPort(port: number): Promise<RedisServerProcess> {
  let running = await spawnRedis(port);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return running.child.pid ?? -1;
    },
    output: () => running.tail.toString(),
    stop: () => {
      // A paused server would only act on SIGTERM after SIGCONT.
      running.child.kill('SIGCONT');
      return terminate(running.child);
    },
    async restart() {
      running.child.kill('SIGCONT');
      await terminate(running.child);
      running = await spawnRedis(port);
    },
    pause: () => {
      running.child.kill('SIGSTOP');
    },
    resume: () => {
      running.child.kill('SIGCONT');
    },
  };
}

async function spawnRedis(port: number): Promise<{ child: ChildProcess; tail: OutputTail }> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning'];
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const tail = new OutputTail();
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => tail.push(chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => tail.push(chunk));
  const failed = new Promise<never>((_, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`redis-server on port ${port} exited (code ${code}):\n${tail.toString()}`)));
  });
  failed.catch(() => {});
  try {
    await Promise.race([untilRedisAnswers(port, 10_000), failed]);
  } catch (error) {
    await terminate(child);
    throw error;
  }
  return { child, tail };
}

/** Waits until a PING on the port gets +PONG. */
async function untilRedisAnswers(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await redisPing(port))) {
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`);
    await sleep(25);
  }
}

function redisPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port, timeout: 500 });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => {
      reply += data.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}
