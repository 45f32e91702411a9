/**
 * One explorer run's world for the one-time code store (src/flows/code/code-store.ts): a fresh
 * MemoryKv holding the codes sent before the race, a fixed clock, and what each guessing client was
 * answered, in the order the answers came back. The protocols are calls of the REAL CodeStore
 * over their own scheduled Kv; the invariants (code-invariants.ts) read the store directly.
 */
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import type { Destination } from '../../src/core/destinations.ts';
import type { Clock } from '../../src/ports/clock.ts';
import type { Kv } from '../../src/ports/kv.ts';
import type { CodePurpose } from '../../src/ports/sender.ts';
import { CodeStore, type Verdict } from '../../src/flows/code/code-store.ts';
import { explore, type Exploration, type Invariant, type Protocol } from './scheduler.ts';
import { CounterRandoms } from './counter-random.ts';

const NOW = Date.UTC(2025, 0, 1);
export const PURPOSE: CodePurpose = 'login';
export const DESTINATION: Destination = { channel: 'email', to: 'owner@example.test' };
/** Never issued: every code is `<stream><draw>` with a stream of at least 1 (CounterRandom). */
export const WRONG_GUESS = '000000';

export interface Answer {
  readonly protocol: string;
  readonly guess: string;
  readonly verdict: Verdict;
}

export class CodeWorld {
  readonly store = new MemoryKv({ now: () => NOW });
  readonly clock: Clock = { now: () => NOW };
  /** Who sent which code: before the race (seeded) or during it (a protocol). */
  readonly sent = new Map<string, string>();
  /** Answers to guesses, in the order they came back. */
  readonly answers: Answer[] = [];
  /** Wrong guesses already counted before the race. */
  seededTries = 0;
  /** Code name → how many answers had been given when its withdrawal returned. */
  readonly withdrawnAt = new Map<string, number>();
  /** Code name → its nonce, to withdraw exactly that code. */
  readonly nonces = new Map<string, string>();
  readonly #Codes: typeof CodeStore;
  readonly #randoms = new CounterRandoms();

  constructor(Codes: typeof CodeStore) {
    this.#Codes = Codes;
  }

  /** The code store over `kv`, with randomness of its own for `owner`. */
  codes(kv: Kv, owner: string): CodeStore {
    return new this.#Codes(kv, this.clock, this.#randoms.of(owner));
  }

  code(name: string): string {
    const code = this.sent.get(name);
    if (code === undefined) throw new Error(`no code named ${name} was sent`);
    return code;
  }
}

export type CodeProtocol = Protocol<CodeWorld>;
export type CodeInvariant = Invariant<CodeWorld>;

/** A client types the code `name` was sent (or, for WRONG_GUESS, a wrong one). */
export function guess(name: string): CodeProtocol {
  return async (kv, world, protocol) => {
    const typed = name === WRONG_GUESS ? WRONG_GUESS : world.code(name);
    const verdict = await world.codes(kv, protocol).attempt(PURPOSE, DESTINATION, typed);
    world.answers.push({ protocol, guess: typed, verdict });
  };
}

/** Another code is sent to the destination (a resend, or a stranger sending to it). */
export const send: CodeProtocol = async (kv, world, protocol) => {
  const { code } = await world.codes(kv, protocol).issue(PURPOSE, DESTINATION);
  world.sent.set(protocol, code);
};

/** The code `name` could not be delivered: the sender withdraws exactly that code. */
export function withdraw(name: string): CodeProtocol {
  return async (kv, world, protocol) => {
    const nonce = world.nonces.get(name);
    if (nonce === undefined) throw new Error(`no code named ${name} was sent before the race`);
    await world.codes(kv, protocol).withdraw(PURPOSE, DESTINATION, nonce);
    world.withdrawnAt.set(name, world.answers.length);
  };
}

export interface CodeScenario {
  /** Codes sent before the race, by name. */
  readonly sent: readonly string[];
  /** Wrong guesses counted before the race (after the codes were sent). */
  readonly wrongBefore?: number;
  readonly protocols: Readonly<Record<string, CodeProtocol>>;
  readonly invariants: readonly CodeInvariant[];
  readonly maxRuns: number;
  /** A mutant of the code store to run instead of the production one (broken variants). */
  readonly codeStore?: typeof CodeStore;
}

export function exploreCodes(scenario: CodeScenario): Promise<Exploration> {
  return explore({
    setup: async () => {
      const world = new CodeWorld(scenario.codeStore ?? CodeStore);
      const codes = world.codes(world.store, 'setup');
      for (const name of scenario.sent) {
        const { code, nonce } = await codes.issue(PURPOSE, DESTINATION);
        world.sent.set(name, code);
        world.nonces.set(name, nonce);
      }
      for (let i = 0; i < (scenario.wrongBefore ?? 0); i++) {
        if ((await codes.attempt(PURPOSE, DESTINATION, WRONG_GUESS)) !== 'wrong') throw new Error('a seeded wrong guess was not counted');
        world.seededTries += 1;
      }
      return { world, store: world.store };
    },
    protocols: scenario.protocols,
    invariants: scenario.invariants,
    maxRuns: scenario.maxRuns,
    reduction: 'sleep-sets',
  });
}
