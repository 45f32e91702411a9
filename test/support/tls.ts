/**
 * A throwaway certificate authority and one server certificate for 127.0.0.1 (IP SAN), made with
 * `openssl` in a temporary directory: what a private CA in production looks like to a client.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RedisTlsFiles } from '../../scripts/redis-cluster.ts';

const inCi = process.env.CI === 'true' || process.env.CI === '1';

/** caFile is what a client trusts; certFile (for 127.0.0.1, signed by the CA) and keyFile are the server's. */
export interface TestPki extends RedisTlsFiles {
  readonly dir: string;
  remove(): void;
}

/** Returns false (run) when `openssl` is on PATH, else a loud skip message (a failure in CI). */
export function skipUnlessOpenssl(): false | string {
  if (spawnSync('openssl', ['version']).status === 0) return false;
  const message = 'SKIPPED: openssl is not on PATH — install it to run the Redis TLS suite';
  if (inCi) throw new Error(`${message} (required in CI)`);
  process.stderr.write(`\n*** ${message} ***\n\n`);
  return message;
}

function openssl(dir: string, args: string[]): void {
  const result = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8', timeout: 20_000 });
  if (result.status !== 0) throw new Error(`openssl ${args.join(' ')} failed:\n${result.stderr}`);
}

/** EC keys: generating them takes milliseconds, where RSA keys would cost a second or more. */
export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-pki-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(dir, ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=latchkey test CA']);
  openssl(dir, ['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  openssl(dir, [
    'x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext',
  ]);
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    certFile: join(dir, 'server.crt'),
    keyFile: join(dir, 'server.key'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
