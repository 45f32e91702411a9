/**
 * Passkeys of an account (docs/design.md §4, second factors): WebAuthn credentials, each a public
 * key the account's authenticator holds the private half of. The signature counter only rises, by
 * one conditional write, so two logins racing with one assertion cannot both count.
 */
export interface Passkey {
  /** The credential id, base64url: unique across every account. */
  readonly id: string;
  readonly uid: string;
  /** The COSE public key, base64url. */
  readonly publicKey: string;
  readonly counter: number;
  /** Hints for the browser (`internal`, `hybrid`, `usb`, …), as the authenticator reported them. */
  readonly transports: readonly string[];
  readonly name: string;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
}

/** What adding a passkey did: stored it, found its credential id stored already, or found the account full. */
export type PasskeyAdded = 'added' | 'taken' | 'full';

export interface PasskeyRepo {
  /**
   * Adds a passkey if its account holds fewer than `max`, checked atomically with the insert, so
   * concurrent registrations never take an account past `max`. `taken`: its credential id is
   * already stored (for any account), whatever the count.
   */
  add(passkey: Passkey, max: number): Promise<PasskeyAdded>;
  find(id: string): Promise<Passkey | null>;
  list(uid: string): Promise<Passkey[]>;
  count(uid: string): Promise<number>;
  /** Renames one of the account's passkeys; false if the account has no such passkey. */
  rename(uid: string, id: string, name: string): Promise<boolean>;
  /** Removes one of the account's passkeys; false if the account has no such passkey. */
  remove(uid: string, id: string): Promise<boolean>;
  /** Removes every passkey of the account; answers how many there were. */
  removeAll(uid: string): Promise<number>;
  /**
   * Records a login with the passkey: sets `counter` and `last_used_at` only if the stored counter
   * is below `counter`, or both are 0 (an authenticator without a counter, which WebAuthn allows).
   * False: the counter did not rise (a replay, a cloned authenticator, or a racing login that
   * stored a higher one first), or the passkey is gone. The stored counter never goes down.
   */
  use(id: string, counter: number, now: number): Promise<boolean>;
}
