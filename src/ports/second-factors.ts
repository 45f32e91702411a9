/**
 * Second factors of an account (docs/design.md §4, second factors): a TOTP secret, sealed at rest, and the
 * hashes of its recovery codes. Every "use once" is one conditional write, so two requests racing
 * with the same code cannot both pass.
 */
export interface TotpFactor {
  /** The sealed secret (TokenCipher output), or null when none was set up. */
  readonly sealed: string;
  /** Null while set up but not yet enabled with a correct code. */
  readonly enabledAt: number | null;
  /** The last TOTP time step accepted (replays of it or an earlier step are refused). */
  readonly lastStep: number;
}

export interface SecondFactorRepo {
  findTotp(uid: string): Promise<TotpFactor | null>;
  /** Stores a new, not yet enabled secret, replacing one that was never enabled. False if one is enabled. */
  setPendingTotp(uid: string, sealed: string, now: number): Promise<boolean>;
  /**
   * Enables the pending secret whose code was right at `step`, and stores the recovery code hashes
   * in the same transaction. False if there was nothing pending (or it was enabled meanwhile).
   */
  enableTotp(uid: string, sealed: string, step: number, recoveryHashes: readonly string[], now: number): Promise<boolean>;
  /** Raises the last accepted step to `step` if it is lower: true means this code is used now, by this call. */
  useTotpStep(uid: string, step: number): Promise<boolean>;
  /** Removes the TOTP factor and every recovery code. True if there was a factor. */
  removeTotp(uid: string): Promise<boolean>;
  /** Deletes this recovery code hash: true means it existed and this call used it. */
  useRecoveryCode(uid: string, hash: string): Promise<boolean>;
  /** Replaces every recovery code (the old ones die) in one transaction. */
  replaceRecoveryCodes(uid: string, hashes: readonly string[]): Promise<void>;
  countRecoveryCodes(uid: string): Promise<number>;
}
