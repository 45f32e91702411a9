/**
 * The interleaving explorer (docs/design.md §3.3): runs a few protocols concurrently over a ScheduledKv and
 * enumerates EVERY order of their Kv calls, by depth-first search over the choice points with
 * replay: each run starts from scratch (fresh store, fixed clock, deterministic randomness) and
 * follows a prefix of choices, then takes the first pending call at every later choice point (so
 * the first interleaving runs the protocols one after the other, in the order they are listed).
 * The invariants are checked before the first step, after every step and at the end.
 */
import type { Kv } from '../../src/ports/kv.ts';
import { PendingCalls, ScheduledKv, type Access, type PendingCall } from './scheduled-kv.ts';

/** A protocol under test: one async operation, made of Kv calls on `kv`. */
export type Protocol<W> = (kv: Kv, world: W, name: string) => Promise<void>;

export interface Moment<W> {
  readonly world: W;
  /** True once every protocol has returned: the settled state. */
  readonly final: boolean;
  /** Whether this protocol's promise has resolved (a logout is final from that moment on). */
  returned(protocol: string): boolean;
}

/** Returns what is wrong, or null. */
export type Invariant<W> = (moment: Moment<W>) => Promise<string | null>;

export interface ExploreOptions<W> {
  /** Builds one run's world: a fresh store holding the state before the race. */
  setup(): Promise<{ world: W; store: Kv }>;
  protocols: Readonly<Record<string, Protocol<W>>>;
  invariants: readonly Invariant<W>[];
  /** The search fails, rather than silently truncating, when the space holds more interleavings. */
  maxRuns: number;
  /** Makes a trace line readable (e.g. names sids after the sessions that own them). */
  describe?(world: W, line: string): string;
  /**
   * 'sleep-sets': skips orders that differ from one already explored only by swapping adjacent
   * calls of different protocols that touch different things (Godefroid's sleep sets). Every
   * reachable state is still visited, and at least one order of every way the conflicting calls
   * can be ordered runs to the end, so the invariants are checked as thoroughly. Sound only when
   * protocols share state through their scheduled calls alone (per-protocol randomness, world
   * bookkeeping keyed by protocol), and when the branches of one protocol's Promise.all never
   * compare the random values they draw (swapping two independent calls may swap which branch
   * drew which value: the same state up to renaming). A run cut short this way counts as one of
   * `interleavings`.
   */
  reduction?: 'sleep-sets';
}

export interface Violation {
  /** Which interleaving (1-based, in search order) broke it. */
  readonly run: number;
  readonly message: string;
  /** The `protocol: call` lines in the order they ran, up to the step that broke the invariant. */
  readonly interleaving: readonly string[];
  /** Both, ready for an assertion message. */
  readonly report: string;
}

export interface Exploration {
  /** Runs made; when `exhausted`, the number of distinct interleavings of the protocols' calls. */
  readonly interleavings: number;
  /** True when the whole space was enumerated (false only when a violation stopped the search). */
  readonly exhausted: boolean;
  readonly violation: Violation | null;
}

interface Choice {
  readonly index: number;
  readonly count: number;
  /** The pending calls offered at this point, to prove that a replay really is a replay. */
  readonly offered: string;
  /** The indexes this point may take, in order (all of them unless the reduction put some asleep). */
  readonly awake: readonly number[];
}

interface RunResult {
  readonly choices: readonly Choice[];
  readonly violation: Omit<Violation, 'run' | 'report'> | null;
}

export async function explore<W>(options: ExploreOptions<W>): Promise<Exploration> {
  let prefix: readonly number[] = [];
  let previous: readonly Choice[] = [];
  for (let run = 1; ; run++) {
    if (run > options.maxRuns) {
      throw new Error(`the interleaving space is larger than maxRuns=${options.maxRuns}: shrink the scenario`);
    }
    const result = await runOnce(options, prefix, previous);
    if (result.violation !== null) {
      const { message, interleaving } = result.violation;
      const steps = interleaving.map((line, i) => `  ${String(i + 1).padStart(3)}. ${line}`).join('\n');
      const report = `interleaving #${run} breaks an invariant: ${message}\n${steps}`;
      return { interleavings: run, exhausted: false, violation: { run, message, interleaving, report } };
    }
    const next = nextPrefix(result.choices);
    if (next === null) return { interleavings: run, exhausted: true, violation: null };
    prefix = next;
    previous = result.choices;
  }
}

/** Depth-first backtracking: bump the deepest choice that still has an untried (awake) sibling. */
function nextPrefix(choices: readonly Choice[]): number[] | null {
  for (let depth = choices.length - 1; depth >= 0; depth--) {
    const choice = choices[depth];
    const sibling = choice?.awake.find((index) => index > choice.index);
    if (choice !== undefined && sibling !== undefined) {
      return [...choices.slice(0, depth).map((c) => c.index), sibling];
    }
  }
  return null;
}

/**
 * Calls that touch nothing in common (or only read it) commute — two calls one protocol has in
 * flight at once (Promise.all) included: what follows each runs on its own branch.
 */
function independent(a: PendingCall, b: PendingCall): boolean {
  return !a.footprint.some((x) => b.footprint.some((y) => conflict(x, y)));
}

function conflict(x: Access, y: Access): boolean {
  if (x.resource === '*' || y.resource === '*') return true;
  return x.resource === y.resource && (x.write || y.write) && (x.field === undefined || y.field === undefined || x.field === y.field);
}

async function runOnce<W>(
  options: ExploreOptions<W>,
  prefix: readonly number[],
  previous: readonly Choice[],
): Promise<RunResult> {
  const { world, store } = await options.setup();
  const pending = new PendingCalls();
  const returned = new Set<string>();
  const failures: string[] = [];
  const names = Object.keys(options.protocols);
  for (const [rank, [name, protocol]] of Object.entries(options.protocols).entries()) {
    protocol(new ScheduledKv(store, name, rank, pending), world, name).then(
      () => returned.add(name),
      (error: unknown) => failures.push(`${name} threw ${error instanceof Error ? error.stack : String(error)}`),
    );
  }

  const choices: Choice[] = [];
  const trace: string[] = [];
  const describe = (line: string): string => options.describe?.(world, line) ?? line;
  const check = async (final: boolean): Promise<RunResult['violation']> => {
    const moment: Moment<W> = { world, final, returned: (name) => returned.has(name) };
    const fail = (message: string) => ({ message: describe(message), interleaving: trace.map(describe) });
    // A protocol that throws (other than the errors it expects and catches itself) is a failure too.
    if (failures[0] !== undefined) return fail(failures[0]);
    for (const invariant of options.invariants) {
      const message = await invariant(moment);
      if (message !== null) return fail(message);
    }
    return null;
  };

  // Calls whose orders were all explored already from an earlier sibling (ids, see `reduction`).
  let asleep = new Set<string>();
  for (;;) {
    await settle();
    const violation = await check(false);
    if (violation !== null) return { choices, violation };
    if (pending.size === 0) break;

    const depth = choices.length;
    const offered = pending.labels().join('\n');
    const replayed = previous[depth];
    if (depth < prefix.length && replayed?.offered !== offered) {
      throw new Error(`run is not deterministic: at step ${depth + 1} the pending calls differ from the last run`);
    }
    const calls = pending.list();
    const awake = calls.flatMap((call, i) => (asleep.has(call.id) ? [] : [i]));
    // Every call left is asleep: each order from here continues one explored before.
    if (awake.length === 0) return { choices, violation: null };
    const index = prefix[depth] ?? awake[0] ?? 0;
    choices.push({ index, count: pending.size, offered, awake });
    if (options.reduction === 'sleep-sets') asleep = nextAsleep(calls, awake, index, asleep);
    const call = pending.take(index);
    trace.push(`${call.protocol}: ${call.label}`);
    call.run();
  }

  const stuck = names.filter((name) => !returned.has(name));
  if (stuck.length > 0) {
    return { choices, violation: { message: `${stuck.join(', ')} never finished but made no Kv call`, interleaving: trace.map(describe) } };
  }
  return { choices, violation: await check(true) };
}

/**
 * Sleep sets: after taking `calls[index]`, the calls already asleep and the siblings explored before
 * it at this point stay asleep as long as they are independent of it (any order that takes one of
 * them next was explored from that sibling).
 */
function nextAsleep(calls: readonly PendingCall[], awake: readonly number[], index: number, asleep: ReadonlySet<string>): Set<string> {
  const taken = calls[index];
  if (taken === undefined) return new Set();
  const candidates = calls.filter((call, i) => asleep.has(call.id) || (i < index && awake.includes(i)));
  return new Set(candidates.filter((call) => independent(call, taken)).map((call) => call.id));
}

/**
 * Lets every protocol run until it is blocked on a pending Kv call or done. A MemoryKv call settles
 * in microtasks, which all drain before a macrotask; the second turn is a margin for code that
 * hops through one macrotask of its own.
 */
async function settle(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  await new Promise<void>((resolve) => setImmediate(resolve));
}
