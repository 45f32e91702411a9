/**
 * An in-process latchkey node wired to a WuKongIM test double, on an in-memory Kv the test can
 * look into (every key, to prove nothing was left behind).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { parseConfig } from '../../src/config/config.ts';
import { createLogger } from '../../src/logger.ts';
import { startServer } from '../../src/main.ts';
import { testDefaults, type TestServer } from './server.ts';
import type { WukongImDouble } from './wukongim-double.ts';

export const MANAGER_TOKEN = 'test-manager-token';

export interface ImTestNode extends TestServer {
  readonly kv: MemoryKv;
}

/** `im` config pointing at the double: short timeouts and a quick retry, so failure tests stay fast. */
export function imConfig(double: WukongImDouble): Record<string, unknown> {
  return {
    type: 'wukongim',
    wukongim: { api_url: double.url, manager_token: MANAGER_TOKEN, timeout_ms: 400 },
    quit_retry: { interval_ms: 100, max_attempts: 50 },
  };
}

export async function startImNode(double: WukongImDouble, overrides: Record<string, unknown> = {}): Promise<ImTestNode> {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-im-'));
  const config = parseConfig({ ...testDefaults, data_dir: dataDir, im: imConfig(double), ...overrides });
  const kv = new MemoryKv();
  const server = await startServer(config, createLogger(config.logLevel), { kv });
  return {
    ...server,
    kv,
    async stop() {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Every key of the store that belongs to this user or to one of these sessions. */
export function keysOf(kv: MemoryKv, uid: string, sids: readonly string[] = []): string[] {
  return kv.keys().filter((key) => key.includes(`{${uid}}`) || sids.some((sid) => key.includes(sid)));
}
