/**
 * Which real services the tests can reach. In CI (CI=true) the Redis and PostgreSQL suites are
 * required: a missing service fails the run. Elsewhere the suite is skipped, and says so loudly.
 */
import { createConnection } from 'node:net';

export const REDIS_URL = process.env.LATCHKEY_TEST_REDIS ?? 'redis://127.0.0.1:6379';
export const POSTGRES_URL = process.env.LATCHKEY_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
/** The octo-server side of `latchkey import`: MariaDB/MySQL, root with an empty password. */
export const MARIADB_URL = process.env.LATCHKEY_TEST_MARIADB ?? 'mysql://root@127.0.0.1:3306/test';

const inCi = process.env.CI === 'true' || process.env.CI === '1';

function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    // Generous: on a loaded 2-core machine a healthy server can take a while to accept.
    const socket = createConnection({ host: hostname, port: Number(port), timeout: 5000 });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('timeout', () => { socket.destroy(); resolve(false); });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Returns false (skip) or true (run). In CI an unreachable service throws, failing the suite.
 * Usage: `describe('x', { skip: await skipUnless('redis') }, ...)`.
 */
export async function skipUnless(service: 'redis' | 'postgres' | 'mariadb'): Promise<false | string> {
  const url = service === 'redis' ? REDIS_URL : service === 'postgres' ? POSTGRES_URL : MARIADB_URL;
  if (await reachable(url)) return false;
  if (inCi) throw new Error(`${service} at ${url} is required in CI but is not reachable`);
  const message = `SKIPPED: ${service} is not reachable at ${url} — start it to run this suite`;
  process.stderr.write(`\n*** ${message} ***\n\n`);
  return message;
}

/** A key prefix unique to this test process, so parallel test files never share keys. */
export function uniquePrefix(label: string): string {
  return `lktest:${label}:${process.pid}:${Math.random().toString(36).slice(2, 8)}:`;
}
