/**
 * The account store as the explorer sees it: the scenario's accounts, kept in the Kv so
 * that every read and write of its status and password is a scheduling point like any store call,
 * and the production ban, password reset and QR exchange run unchanged against it. Only the
 * methods those flows call are modelled; any other throws, so a flow that starts using one is
 * noticed rather than silently given nothing.
 */
import type { AccessRemoval, AccessRemovalResult, AccountRepo, AccountStatus, AuditEvent, User } from '../../src/ports/accounts.ts';
import type { Kv } from '../../src/ports/kv.ts';

/** The account's status, read by every login's status check (world.ts). */
export const statusKey = (uid: string): string => `status:${uid}`;
export const passwordKey = (uid: string): string => `password:${uid}`;

export const OWNER_EMAIL = 'owner@example.test';

export function asStatus(value: string | null): AccountStatus | null {
  return value === 'active' || value === 'banned' ? value : null;
}

/** What the flows call on the account store; the rest of AccountRepo is not modelled. */
type Modelled = Pick<AccountRepo,
  'findByUid' | 'findByEmail' | 'updatePasswordHash' | 'setStatus' | 'removeAccessKeepingAnAdmin' | 'upsertDevice' | 'appendAudit'>;

/**
 * An account exists while its status key does. `owner` is the one that proved OWNER_EMAIL (the
 * address password resets and code logins go to).
 */
class KvAccounts implements Modelled {
  readonly #kv: Kv;
  readonly #owner: string;

  constructor(kv: Kv, owner: string) {
    this.#kv = kv;
    this.#owner = owner;
  }

  async findByUid(uid: string): Promise<User | null> {
    const [status, passwordHash] = await Promise.all([this.#kv.get(statusKey(uid)), this.#kv.get(passwordKey(uid))]);
    const known = asStatus(status);
    return known === null ? null : user(uid, known, passwordHash, uid === this.#owner);
  }

  findByEmail(email: string): Promise<User | null> {
    return email === OWNER_EMAIL ? this.findByUid(this.#owner) : Promise.resolve(null);
  }

  /** Compare-and-set, like the SQL `UPDATE … WHERE password_hash = expected`. */
  async updatePasswordHash(uid: string, expected: string | null, next: string): Promise<boolean> {
    if (expected === null) return false;
    return this.#kv.compareAndSet(passwordKey(uid), expected, next);
  }

  async setStatus(uid: string, status: AccountStatus): Promise<boolean> {
    return this.#kv.set(statusKey(uid), status, { xx: true });
  }

  /** The account is a plain user, so no change of it can take away the last admin: one atomic write. */
  async removeAccessKeepingAnAdmin(uid: string, change: AccessRemoval): Promise<AccessRemovalResult> {
    if (!('status' in change)) throw new Error('the explorer models no roles');
    return (await this.setStatus(uid, change.status)) ? 'done' : 'not_found';
  }

  /** Device rows and audit events change nothing a session invariant reads: not scheduled. */
  async upsertDevice(): Promise<boolean> { return false; }

  async appendAudit(_event: AuditEvent): Promise<void> {}
}

function user(uid: string, status: AccountStatus, passwordHash: string | null, owner: boolean): User {
  return {
    uid,
    username: uid,
    name: uid,
    email: owner ? OWNER_EMAIL : null,
    zone: null,
    phone: null,
    emailVerified: owner,
    phoneVerified: false,
    passwordHash,
    role: 'user',
    status,
    createdAt: 0,
    updatedAt: 0,
  };
}

/** The account store over `kv`, `owner` holding OWNER_EMAIL; methods not modelled throw when called. */
export function kvAccounts(kv: Kv, owner: string): AccountRepo {
  return onlyModelled<AccountRepo>(new KvAccounts(kv, owner), 'account store');
}

/**
 * `modelled` standing in for a whole `T` (a port, a flow's deps): what it lacks rejects when
 * called, naming itself, so a flow that starts using more is noticed rather than handed undefined.
 */
export function onlyModelled<T>(modelled: object, what: string): T {
  return new Proxy(modelled, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value === 'function') return value.bind(target);
      // Not `then`: the store must not look like a promise to whoever awaits something holding it.
      if (typeof property !== 'string' || property === 'then') return value;
      if (value !== undefined) return value;
      return () => Promise.reject(new Error(`the explorer's ${what} does not model ${property}`));
    },
  }) as T;
}
