/** Starts an in-process latchkey node for a test, on a free port, with its own data directory. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/config.ts';
import { startServer, type Server } from '../../src/main.ts';
import { createLogger } from '../../src/logger.ts';

export interface TestServer extends Server {
  stop(): Promise<void>;
}

/** Fast hashing and generous limits unless the test says otherwise. */
export const testDefaults = {
  port: 0,
  // Its own metrics listener on any free port: tests run side by side, and 9464 is one port.
  metrics: { port: 0 },
  log_level: 'silent',
  password: { memory_cost: 1024, time_cost: 1 },
  rate_limits: { login: { max: 100_000 }, register: { max: 100_000 } },
} as const;

export async function startTestServer(overrides: Record<string, unknown> = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-test-'));
  const config = parseConfig({ ...testDefaults, data_dir: dataDir, ...overrides });
  const server = await startServer(config, createLogger(config.logLevel));
  return {
    ...server,
    async stop() {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface Answer {
  status: number;
  // Tests read answers field by field; the contract itself is asserted, not typed.
  body: any;
  headers: Headers;
}

/** A small JSON client: `call(server, 'POST', '/v1/user/login', body, token)`. */
export async function call(base: { url: string }, method: string, path: string, body?: unknown, token?: string): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token !== undefined) headers.token = token;
  const response = await fetch(base.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, body: parsed, headers: response.headers };
}
