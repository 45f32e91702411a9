/**
 * Reads a V8 `.cpuprofile` (what `node --cpu-prof` writes) and sums self time by function and by
 * file/package, so a profile of the server under load says where its CPU went without a GUI.
 *
 *   node bench/cpuprofile.ts <file.cpuprofile> [--top 40]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
}

interface CpuProfile {
  /** µs on the monotonic clock (CLOCK_MONOTONIC on Linux, the one process.hrtime reads). */
  readonly startTime: number;
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface SelfTime {
  readonly name: string;
  readonly micros: number;
  readonly share: number;
}

export interface ProfileSummary {
  /** Sampled time, idle excluded, in µs. */
  readonly busyMicros: number;
  readonly idleMicros: number;
  readonly byFunction: readonly SelfTime[];
  readonly byFile: readonly SelfTime[];
}

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));

/** node_modules/<pkg>/… → the package; the repository's own files → their path; node: built-ins as they are. */
function fileOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const modules = path.lastIndexOf('/node_modules/');
  if (modules !== -1) {
    const rest = path.slice(modules + '/node_modules/'.length).split('/');
    return `pkg ${rest[0]?.startsWith('@') === true ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  return path.startsWith(REPO_ROOT) ? path.slice(REPO_ROOT.length) : path;
}

function ranked(totals: Map<string, number>, busy: number): SelfTime[] {
  return [...totals.entries()]
    .map(([name, micros]) => ({ name, micros, share: busy === 0 ? 0 : micros / busy }))
    .sort((a, b) => b.micros - a.micros);
}

/** Only samples taken within `window` (µs, monotonic clock) count, when given. */
export function summarizeProfile(profile: CpuProfile, window?: { readonly from: number; readonly to: number }): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const functions = new Map<string, number>();
  const files = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  let at = profile.startTime;
  // timeDeltas[i] is the time before sample i; it is charged to the frame of sample i.
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    at += delta;
    if (window !== undefined && (at < window.from || at > window.to)) return;
    const frame = byId.get(id)?.callFrame;
    if (frame === undefined) return;
    if (frame.functionName === '(idle)') {
      idle += delta;
      return;
    }
    busy += delta;
    const file = fileOf(frame.url, frame.functionName);
    const name = `${frame.functionName || '(anonymous)'} ${file}${frame.url === '' ? '' : `:${frame.lineNumber + 1}`}`;
    functions.set(name, (functions.get(name) ?? 0) + delta);
    files.set(file, (files.get(file) ?? 0) + delta);
  });
  return { busyMicros: busy, idleMicros: idle, byFunction: ranked(functions, busy), byFile: ranked(files, busy) };
}

export function formatSummary(summary: ProfileSummary, top: number, requests?: number): string {
  const perRequest = (micros: number) => (requests === undefined || requests === 0 ? '' : `  ${(micros / requests).toFixed(2).padStart(7)} µs/req`);
  const line = (entry: SelfTime) =>
    `${(entry.share * 100).toFixed(1).padStart(5)} %  ${(entry.micros / 1000).toFixed(0).padStart(7)} ms${perRequest(entry.micros)}  ${entry.name}`;
  return [
    `busy ${(summary.busyMicros / 1000).toFixed(0)} ms, idle ${(summary.idleMicros / 1000).toFixed(0)} ms` +
      (requests === undefined ? '' : `, ${requests} requests → ${(summary.busyMicros / requests).toFixed(1)} µs/req sampled`),
    '',
    'self time by file / package:',
    ...summary.byFile.slice(0, top).map(line),
    '',
    'self time by function:',
    ...summary.byFunction.slice(0, top).map(line),
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({ options: { top: { type: 'string' } }, allowPositionals: true });
  const [file] = positionals;
  if (file === undefined) throw new Error('usage: node bench/cpuprofile.ts <file.cpuprofile> [--top 40]');
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  process.stdout.write(`${formatSummary(summarizeProfile(profile), Number(values.top ?? 40))}\n`);
}
