/**
 * A Redis Cluster on loopback, made of private `redis-server` processes: N masters with R replicas
 * each, created with `redis-cli --cluster create`. Used by the tests and by `npm run dev-cluster`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ClusterNode {
  readonly port: number;
  readonly process: ChildProcess;
}

export interface RedisCluster {
  readonly nodes: readonly ClusterNode[];
  /** `redis-cluster://127.0.0.1:p1,127.0.0.1:p2,…` (rediss-cluster:// with TLS) — latchkey's store URL for this cluster. */
  readonly storeUrl: string;
  /** Ports of the nodes that are masters right now. */
  masters(): Promise<number[]>;
  /** kill -9 of one node, as a crash would. */
  kill(port: number): void;
  stop(): Promise<void>;
}

export function redisCli(port: number, ...args: string[]): string {
  return redisCliWith([], port, ...args);
}

/** redis-cli with connection options first (`--tls --cacert …` for a TLS cluster). */
function redisCliWith(options: readonly string[], port: number, ...args: string[]): string {
  const result = spawnSync('redis-cli', [...options, '-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 10_000 });
  return result.stdout ?? '';
}

/** A server certificate for 127.0.0.1, its key, and the CA that signed it (PEM files). */
export interface RedisTlsFiles {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/**
 * redis-server (or sentinel) arguments to serve TLS only, on `port`: replication and the cluster
 * bus over TLS too. Clients need no certificate of their own.
 */
export function redisTlsArgs(files: RedisTlsFiles, port: number): string[] {
  return [
    '--port', '0', '--tls-port', String(port), '--tls-cert-file', files.certFile, '--tls-key-file', files.keyFile,
    '--tls-ca-cert-file', files.caFile, '--tls-auth-clients', 'no', '--tls-replication', 'yes', '--tls-cluster', 'yes',
  ];
}

function listenable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

/** Ports whose cluster-bus port (port + 10000) is free too, or redis-server refuses to start. */
async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = await freePort();
    if (port > 1024 && port + 10_000 < 65_536 && !ports.includes(port) && (await listenable(port + 10_000))) ports.push(port);
  }
  return ports;
}

async function untilAnswers(node: ClusterNode, cli: readonly string[], deadline: number): Promise<void> {
  const { port } = node;
  while (!redisCliWith(cli, port, 'PING').includes('PONG')) {
    if (node.process.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
    await sleep(50);
  }
}

/**
 * A port picked free can be taken by another process before redis-server binds it: on a failed
 * start, try again with new ports.
 */
export interface RedisClusterOptions {
  readonly masters?: number;
  readonly replicas?: number;
  /** cluster-node-timeout: how long a master may be unreachable before its replica takes over. Default 2000 ms. */
  readonly nodeTimeoutMs?: number;
  /** Serve TLS only (clients, replication and cluster bus); the store URL is then rediss-cluster://. */
  readonly tls?: RedisTlsFiles;
}

export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startRedisClusterOnce(options);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

async function startRedisClusterOnce(options: RedisClusterOptions): Promise<RedisCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicas ?? 1;
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-cluster-'));
  const ports = await freePorts(masters * (1 + replicas));
  const { tls } = options;
  const cli = tls === undefined ? [] : ['--tls', '--cacert', tls.caFile];
  const nodes: ClusterNode[] = ports.map((port) => ({
    port,
    process: spawn('redis-server', [
      ...(tls === undefined ? ['--port', String(port)] : redisTlsArgs(tls, port)), '--bind', '127.0.0.1', '--cluster-enabled', 'yes',
      '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', String(options.nodeTimeoutMs ?? 2000),
      // A file of its own: a replica's full sync renames the RDB it received to its dbfilename,
      // syncs the directory, then loads that file by name. With one dump.rdb for all nodes, two
      // replicas syncing at once (as every replica of a new cluster does) could each load the
      // other's master's data, and then replicate their own master on top of it: once promoted,
      // such a replica lacked what its master held before the sync, and held another's keys.
      '--save', '', '--appendonly', 'no', '--dir', dir, '--dbfilename', `dump-${port}.rdb`, '--loglevel', 'warning',
    ], { stdio: 'ignore' }),
  }));
  const stop = async (): Promise<void> => {
    for (const node of nodes) node.process.kill('SIGKILL');
    await sleep(100);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 15_000;
    for (const node of nodes) await untilAnswers(node, cli, deadline);
    const create = spawnSync('redis-cli', [
      ...cli, '--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes',
    ], { encoding: 'utf8', timeout: 30_000 });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed:\n${create.stdout}\n${create.stderr}`);
    for (const port of ports) {
      while (!redisCliWith(cli, port, 'CLUSTER', 'INFO').includes('cluster_state:ok')) {
        if (Date.now() > deadline + 15_000) throw new Error(`cluster node ${port} never reached cluster_state:ok`);
        await sleep(100);
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    nodes,
    storeUrl: `${tls === undefined ? 'redis' : 'rediss'}-cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
    async masters() {
      const alive = nodes.filter((n) => n.process.exitCode === null && n.process.signalCode === null);
      return alive.filter((n) => redisCliWith(cli, n.port, 'ROLE').startsWith('master')).map((n) => n.port);
    },
    kill(port) {
      nodes.find((n) => n.port === port)?.process.kill('SIGKILL');
    },
    stop,
  };
}

export function redisClusterAvailable(): boolean {
  return spawnSync('redis-server', ['--version']).status === 0 && spawnSync('redis-cli', ['--version']).status === 0;
}
