/** Helpers for one-time-code tests: a node with a hand-driven clock, the outbox, and a random that tells. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { parseConfig } from '../../src/config/config.ts';
import { createRuntime, type Runtime } from '../../src/runtime/runtime.ts';
import { buildApp } from '../../src/http/app.ts';
import { createLogger } from '../../src/logger.ts';
import { cryptoRandom, type Random } from '../../src/ports/random.ts';
import type { Clock } from '../../src/ports/clock.ts';
import { startMetricsListener } from '../../src/ops/metrics-listener.ts';
import { testDefaults } from './server.ts';

export class ManualClock implements Clock {
  #now = Date.now();
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
}

/** Real randomness that remembers the codes it drew, so a test can know an undelivered code too. */
export class TellingRandom implements Random {
  readonly codes: string[] = [];
  bytes(length: number): Buffer {
    return cryptoRandom.bytes(length);
  }
  int(min: number, max: number): number {
    const value = cryptoRandom.int(min, max);
    if (min === 0 && max === 1_000_000) this.codes.push(String(value).padStart(6, '0'));
    return value;
  }
}

export interface CodeTestServer {
  readonly url: string;
  /** The node's metrics listener (as `startServer` would open it). */
  readonly metricsUrl: string;
  readonly app: FastifyInstance;
  readonly runtime: Runtime;
  readonly clock: ManualClock;
  readonly random: TellingRandom;
  readonly dataDir: string;
  stop(): Promise<void>;
}

/** Generous limits unless the test narrows them; `rate_limits` here replaces the whole object. */
export const codeTestLimits = {
  login: { max: 100_000 },
  register: { max: 100_000 },
  code_send_ip: { max: 100_000 },
  code_send_to: { max: 100_000 },
  code_send_to_all: { max: 100_000 },
};

export async function startCodeTestServer(overrides: Record<string, unknown> = {}): Promise<CodeTestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-codes-'));
  // Answers as soon as the code is delivered (no padding to a fixed time) unless the test sets code_login.
  const config = parseConfig({ ...testDefaults, rate_limits: codeTestLimits, code_login: { send_answer_ms: 0 }, data_dir: dataDir, ...overrides });
  const logger = createLogger(config.logLevel);
  const clock = new ManualClock();
  const random = new TellingRandom();
  const runtime = await createRuntime(config, logger, { clock, random });
  const app = await buildApp(runtime, logger);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const metrics = await startMetricsListener(runtime.metrics.registry, '127.0.0.1', 0);
  return {
    url: `http://127.0.0.1:${port}`,
    metricsUrl: metrics.url,
    app,
    runtime,
    clock,
    random,
    dataDir,
    async stop() {
      await Promise.all([app.close(), metrics.close()]);
      await runtime.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface OutboxEntry {
  channel: string;
  to: string;
  code: string;
  purpose: string;
}

export function readOutbox(dataDir: string): OutboxEntry[] {
  const path = join(dataDir, 'outbox.jsonl');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').trim().split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as OutboxEntry);
}

/** The newest code the console sender wrote for this destination. */
export function lastCode(dataDir: string, to: string): string {
  const entry = readOutbox(dataDir).filter((e) => e.to === to).at(-1);
  if (entry === undefined) throw new Error(`no code in the outbox for ${to}`);
  return entry.code;
}

/** Six digits that are not `code`. */
export function wrongCodes(code: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => String((Number(code) + i + 1) % 1_000_000).padStart(6, '0'));
}
