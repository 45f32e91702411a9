/**
 * `npm run dev-cluster -- [--nodes N] [--port P] [--db URL]`: a scale-out layout on one machine.
 * Starts a Redis Cluster of 3 masters with one replica each on loopback, PostgreSQL if it is not
 * running, and N latchkey nodes on consecutive ports from P, all sharing both stores. Ctrl-C (or
 * SIGTERM) stops everything it started.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startRedisCluster } from './redis-cluster.ts';

const HELP = `npm run dev-cluster -- [--nodes N] [--port P] [--db URL]
  --nodes N   latchkey nodes to start (default 3)
  --port P    first node's port; the others follow (default 8081)
  --db URL    account database (default postgres://postgres@127.0.0.1:5432/test)
`;

const { values } = parseArgs({
  options: { nodes: { type: 'string', default: '3' }, port: { type: 'string', default: '8081' }, db: { type: 'string' }, help: { type: 'boolean' } },
});
if (values.help === true) {
  process.stdout.write(HELP);
  process.exit(0);
}
const nodeCount = Number(values.nodes);
const firstPort = Number(values.port);
if (!Number.isInteger(nodeCount) || nodeCount < 1 || !Number.isInteger(firstPort) || firstPort < 1 || firstPort + nodeCount > 65_535) {
  process.stderr.write(HELP);
  process.exit(1);
}
const db = values.db ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Starts the machine's PostgreSQL cluster when nothing answers on 5432 (Debian's pg_ctlcluster). */
function ensurePostgres(): void {
  if (!db.includes('127.0.0.1:5432') || spawnSync('pg_isready', ['-h', '127.0.0.1', '-p', '5432']).status === 0) return;
  const version = readdirSync('/etc/postgresql')[0];
  if (version === undefined) throw new Error('PostgreSQL is not installed; pass --db');
  spawnSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start'], { stdio: 'inherit' });
}

ensurePostgres();
const cluster = await startRedisCluster();
process.stdout.write(`redis cluster: ${cluster.storeUrl}\n`);
const nodes: ChildProcess[] = [];
for (let i = 0; i < nodeCount; i++) {
  const port = firstPort + i;
  const child = spawn(process.execPath, ['src/cli.ts', 'serve'], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, LATCHKEY_PORT: String(port), LATCHKEY_METRICS_PORT: String(port + 1000), LATCHKEY_STORE: cluster.storeUrl, LATCHKEY_DB: db },
  });
  nodes.push(child);
  process.stdout.write(`latchkey node ${i + 1}: http://127.0.0.1:${port} (metrics http://127.0.0.1:${port + 1000}/metrics)\n`);
}

let stopping = false;
async function stopAll(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await Promise.all(nodes.map((child) => new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  })));
  await cluster.stop();
  process.exit(0);
}
process.once('SIGINT', () => void stopAll());
process.once('SIGTERM', () => void stopAll());
