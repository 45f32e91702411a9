/** The password hasher a node runs: the argon2 thread pool (adapters/passwords/), bounded by core's queue rule. */
import { createArgon2Hasher, defaultHashConcurrency, type Argon2HasherOptions } from '../adapters/passwords/argon2-hasher.ts';
import { boundedHasher, defaultHashQueue } from '../core/passwords.ts';
import type { PasswordHasher } from '../ports/password-hasher.ts';

export interface HasherOptions extends Argon2HasherOptions {
  /** Calls that may wait for a thread; past them a call is refused at once (503 upstream_unavailable). */
  readonly maxQueue?: number;
}

export function createPasswordHasher(options: HasherOptions = {}): PasswordHasher {
  const concurrency = options.concurrency ?? defaultHashConcurrency();
  const { maxQueue, ...threads } = options;
  return boundedHasher(createArgon2Hasher({ ...threads, concurrency }), concurrency + (maxQueue ?? defaultHashQueue(concurrency)));
}
