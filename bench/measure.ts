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
  /** Server resident memory after the period and its peak during it, MiB. */
  readonly serverRssMiB: number | null;
  readonly serverPeakRssMiB: number | null;
  readonly redisRssMiB: number | null;
}

export interface Processes {
  readonly serverPid: number;
  readonly redisPid: number | null;
}

/** `what` names the measurement in the error thrown when a single answer was not a success. */
export async function measureLoad(what: string, processes: Processes, load: LoadOptions, warmupSeconds: number): Promise<Measured> {
  if (warmupSeconds > 0) await generateLoad({ ...load, durationSeconds: warmupSeconds, amount: undefined });
  return measure(what, processes, () => generateLoad(load));
}

/** Samples CPU and memory around any work that yields a LoadResult (several loads at once, a custom driver). */
export async function measure(what: string, processes: Processes, work: () => Promise<LoadResult>): Promise<Measured> {
  const { serverPid, redisPid } = processes;
  resetPeakRss(serverPid);
  const before = sampleCpu(serverPid, redisPid);
  const load = await work();
  const cpu = cpuBetween(before, sampleCpu(serverPid, redisPid));
  assertAllSucceeded(what, load);
  const rss = rssOf(serverPid);
  return {
    load,
    cpu,
    serverCpuMicrosPerRequest: cpu.serverSeconds === null ? null : (cpu.serverSeconds * 1e6) / load.ok,
    serverRssMiB: mib(rss?.current),
    serverPeakRssMiB: mib(rss?.peak),
    redisRssMiB: redisPid === null ? null : mib(rssOf(redisPid)?.current),
  };
}
