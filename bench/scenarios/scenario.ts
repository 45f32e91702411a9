/** What every scenario takes and gives back to bench/run.ts. */
import type { StoreKind } from '../server.ts';

export interface Settings {
  readonly durationSeconds: number;
  readonly warmupSeconds: number;
  /** Connections of the validation load. */
  readonly connections: number;
  /** validate: interleaved rounds of every target (`--rounds`). */
  readonly rounds: number;
  /** validate: the same targets again at these connection counts (`--sweep`). */
  readonly sweepConnections: readonly number[];
  /** Session tokens the validation load rotates through. */
  readonly sessions: number;
  /** Stores the latchkey scenarios run on. */
  readonly stores: readonly StoreKind[];
  /** validate also runs on a Redis Cluster (when none was asked with --only and redis-cli can make one). */
  readonly validateOnCluster: boolean;
  /** growth: live sessions in the store at each step. */
  readonly growthSizes: readonly number[];
  /** login: connections of the login load (argon2 runs on libuv's 4 threads). */
  readonly loginConnections: number;
  /** logout: sessions logged out one by one. */
  readonly logoutSessions: number;
  /** validate: also measure better-auth (--no-peers skips it, for quick A/B runs of latchkey alone). */
  readonly peers: boolean;
}

export interface ScenarioOutcome {
  /** The scenario's table and notes, printed as they are. */
  readonly text: string;
  /** Everything measured, for the JSON result. */
  readonly data: unknown;
  /** Targets this run missed, one line each. */
  readonly missed: readonly string[];
}

export type Progress = (line: string) => void;
export type Scenario = (settings: Settings, progress: Progress) => Promise<ScenarioOutcome>;
