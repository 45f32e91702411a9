/**
 * One measured load: warm-up, then the measured period with the CPU of the server, of Redis, of
 * the load generator and of everything else sampled around it, and the server's memory after it.
 */
import { cpuBetween, sampleCpu, type CpuUse } from './cpu.ts';
import { assertAllSucceeded, generateLoad, type LoadOptions, type LoadResult } from './load.ts';
import { mib, resetPeakRss, rssOf } from './memory.ts';

export interface Measured {
  readonly load: LoadResult;
  readonly cpu: CpuUse;
  /** Server CPU per answered request, in µs. */
  readonly serverCpuMicrosPerRequest: number | null;
  /** Server resident memory after the period and its peak during it; all redis-servers' after it; MiB. */
  readonly serverRssMiB: number | null;
  readonly serverPeakRssMiB: number | null;
  readonly redisRssMiB: number | null;
}

export interface Processes {
  readonly serverPid: number;
  /** Every redis-server of the store; none for SQLite. */
  readonly redisPids: readonly number[];
}

/** A server under load in its own child process (with its Redis, if any), its processes measured. */
export interface LoadTarget extends Processes {
  readonly url: string;
  /** The route under load. */
  readonly path: string;
  stop(): Promise<void>;
}

/**
 * `what` names the measurement in the error thrown when a single answer was not a success, in the
 * warm-up as in the measured period. `verify`, when given, checks every credential outside the
 * load, before the warm-up and after the measured period: for servers whose failures can look
 * like successes (a 200 with a `null` session), what the load's own check cannot see.
 */
export async function measureLoad(
  what: string,
  processes: Processes,
  load: LoadOptions,
  warmupSeconds: number,
  verify?: () => Promise<void>,
): Promise<Measured> {
  await verify?.();
  if (warmupSeconds > 0) assertAllSucceeded(`${what} (warm-up)`, await generateLoad({ ...load, durationSeconds: warmupSeconds, amount: undefined }));
  const measured = await measure(what, processes, () => generateLoad(load));
  await verify?.();
  return measured;
}

/** Samples CPU and memory around any work that yields a LoadResult (several loads at once, a custom driver). */
export async function measure(what: string, processes: Processes, work: () => Promise<LoadResult>): Promise<Measured> {
  const { serverPid, redisPids } = processes;
  resetPeakRss(serverPid);
  const before = sampleCpu(serverPid, redisPids);
  const load = await work();
  const cpu = cpuBetween(before, sampleCpu(serverPid, redisPids));
  assertAllSucceeded(what, load);
  const rss = rssOf(serverPid);
  return {
    load,
    cpu,
    serverCpuMicrosPerRequest: cpu.serverSeconds === null ? null : (cpu.serverSeconds * 1e6) / load.ok,
    serverRssMiB: mib(rss?.current),
    serverPeakRssMiB: mib(rss?.peak),
    redisRssMiB: redisPids.length === 0 ? null : mib(redisPids.reduce((sum, pid) => sum + (rssOf(pid)?.current ?? 0), 0)),
  };
}
