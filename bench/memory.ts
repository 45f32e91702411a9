/** Resident memory of a process, from /proc/<pid>/status (Linux); null elsewhere or once it has exited. */
import { readFileSync, writeFileSync } from 'node:fs';

export interface Rss {
  /** Resident set now, in bytes. */
  readonly current: number;
  /** Highest resident set since start, or since resetPeakRss() (VmHWM), in bytes. */
  readonly peak: number;
}

export function rssOf(pid: number): Rss | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    const current = kib('VmRSS');
    const peak = kib('VmHWM');
    return Number.isFinite(current) && Number.isFinite(peak) ? { current, peak } : null;
  } catch {
    return null;
  }
}

/**
 * Starts a new peak-RSS period (writing 5 to clear_refs resets VmHWM), so a phase's peak is not
 * the setup's. Best effort: without the right to write it, the peak since start is reported.
 */
export function resetPeakRss(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // not permitted here: the peak covers the whole life of the process
  }
}

export const mib = (bytes: number | null | undefined): number | null => (bytes == null ? null : bytes / 2 ** 20);
