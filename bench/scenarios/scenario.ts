/** What every scenario takes and gives back to bench/run.ts. */
import type { StoreKind } from '../server.ts';

export interface Settings {
  readonly durationSeconds: number;
  readonly warmupSeconds: number;
  /** Connections of the validation load. */
  readonly connections: number;
  /** Session tokens the validation load rotates through. */
  readonly sessions: number;
  /** Stores the latchkey scenarios run on. */
  readonly stores: readonly StoreKind[];
  /** growth: live sessions in the store at each step. */
  readonly growthSizes: readonly number[];
  /** login: connections of the login load (argon2 runs on libuv's 4 threads). */
  readonly loginConnections: number;
  /** logout: sessions logged out one by one. */
  readonly logoutSessions: number;
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
