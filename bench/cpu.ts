/**
 * CPU time from /proc (Linux): per process (utime + stime of /proc/<pid>/stat) and for the whole
 * machine (busy time of /proc/stat), so a run can say how much CPU the server spent per request
 * and whether something else on the box was competing with it. Elsewhere every figure is null.
 */
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const ticksPerSecond = (() => {
  const answer = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const value = Number(answer.stdout?.trim());
  return Number.isInteger(value) && value > 0 ? value : 100;
})();

/** CPU seconds a process has used so far (user + system), or null if /proc cannot tell. */
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; fields after its closing parenthesis are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the whole line, so 11 and 12 after the name.
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
  } catch {
    return null;
  }
}

/** CPU seconds all cores have spent busy (not idle, not waiting for I/O) since boot, or null. */
export function machineBusySeconds(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const [, ...values] = line.trim().split(/\s+/);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = values.map(Number);
    const busy = [user, nice, system, irq, softirq, steal].reduce((sum: number, v) => sum + (v ?? 0), 0);
    return idle === undefined || iowait === undefined ? null : busy / ticksPerSecond;
  } catch {
    return null;
  }
}

/** This process's own CPU seconds (the load generator runs here). */
export function selfCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

export interface CpuSample {
  readonly at: number;
  readonly server: number | null;
  readonly redis: number | null;
  readonly loadgen: number;
  readonly machine: number | null;
}

/** `redisPids`: every redis-server of the store (one, or the nodes of a cluster); none for SQLite. */
export function sampleCpu(serverPid: number, redisPids: readonly number[]): CpuSample {
  const redis = redisPids.map(processCpuSeconds);
  return {
    at: performance.now(),
    server: processCpuSeconds(serverPid),
    redis: redis.length === 0 || redis.includes(null) ? null : redis.reduce((sum: number, seconds) => sum + (seconds ?? 0), 0),
    loadgen: selfCpuSeconds(),
    machine: machineBusySeconds(),
  };
}

/** Cores used between two samples, by the server, Redis, the load generator and everything else. */
export interface CpuUse {
  readonly serverSeconds: number | null;
  readonly serverCores: number | null;
  readonly redisCores: number | null;
  readonly loadgenCores: number;
  readonly otherCores: number | null;
}

export function cpuBetween(before: CpuSample, after: CpuSample): CpuUse {
  const wall = (after.at - before.at) / 1000;
  const delta = (a: number | null, b: number | null) => (a === null || b === null ? null : b - a);
  const server = delta(before.server, after.server);
  const redis = delta(before.redis, after.redis);
  const loadgen = after.loadgen - before.loadgen;
  const machine = delta(before.machine, after.machine);
  const other = machine === null ? null : Math.max(0, machine - (server ?? 0) - (redis ?? 0) - loadgen);
  const cores = (seconds: number | null) => (seconds === null ? null : seconds / wall);
  return {
    serverSeconds: server,
    serverCores: cores(server),
    redisCores: cores(redis),
    loadgenCores: loadgen / wall,
    otherCores: cores(other),
  };
}
