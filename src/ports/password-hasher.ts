/**
 * PasswordHasher: turns passwords into stored hashes and checks them (docs/design.md §4). The
 * adapter (adapters/passwords/) holds the algorithms and the hashing threads; core/passwords.ts
 * bounds how many calls may wait for them.
 */
export interface PasswordVerdict {
  readonly ok: boolean;
  /** The hash is bcrypt or weaker argon2 than configured: store a fresh hash of this password. */
  readonly needsRehash: boolean;
}

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /**
   * Wraps an octo-server legacy hash, hex(MD5(hex(MD5(password)))), in argon2id, so the unsalted
   * MD5 is never stored as it is; verify() checks a password against it and asks for a rehash.
   */
  wrapLegacyMd5(md5Hex: string): Promise<string>;
  /** A null or unrecognised hash never verifies, but costs the same work as one that does. */
  verify(hash: string | null, password: string): Promise<PasswordVerdict>;
  /** Hashes and verifications running now, and waiting for a thread (password.concurrency). */
  load(): { readonly running: number; readonly waiting: number };
  /** Stops the hashing threads. */
  close(): Promise<void>;
}
