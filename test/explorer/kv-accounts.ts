/**
 * The account store as the explorer sees it: the one account of the scenario, kept in the Kv so
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

class KvAccounts implements Modelled {
  readonly #kv: Kv;
  readonly #uid: string;

  constructor(kv: Kv, uid: string) {
    this.#kv = kv;
    this.#uid = uid;
  }

  async findByUid(uid: string): Promise<User | null> {
    if (uid !== this.#uid) return null;
    const [status, passwordHash] = await Promise.all([this.#kv.get(statusKey(uid)), this.#kv.get(passwordKey(uid))]);
    const known = asStatus(status);
    return known === null ? null : user(uid, known, passwordHash);
  }

  findByEmail(email: string): Promise<User | null> {
    return email === OWNER_EMAIL ? this.findByUid(this.#uid) : Promise.resolve(null);
  }

  /** Compare-and-set, like the SQL `UPDATE … WHERE password_hash = expected`. */
  async updatePasswordHash(uid: string, expected: string | null, next: string): Promise<boolean> {
    if (uid !== this.#uid || expected === null) return false;
    return this.#kv.compareAndSet(passwordKey(uid), expected, next);
  }

  async setStatus(uid: string, status: AccountStatus): Promise<boolean> {
    return uid === this.#uid && this.#kv.set(statusKey(uid), status, { xx: true });
  }

  /** The account is a plain user, so no change of it can take away the last admin: one atomic write. */
  async removeAccessKeepingAnAdmin(uid: string, change: AccessRemoval): Promise<AccessRemovalResult> {
    if (!('status' in change)) throw new Error('the explorer models no roles');
    return (await this.setStatus(uid, change.status)) ? 'done' : 'not_found';
  }

  /** Device rows and audit events change nothing a session invariant reads: not scheduled. */
  async upsertDevice(): Promise<void> {}

  async appendAudit(_event: AuditEvent): Promise<void> {}
}

function user(uid: string, status: AccountStatus, passwordHash: string | null): User {
  return {
    uid,
    username: 'owner',
    name: 'Owner',
    email: OWNER_EMAIL,
    zone: null,
    phone: null,
    emailVerified: true,
    phoneVerified: false,
    passwordHash,
    role: 'user',
    status,
    createdAt: 0,
    updatedAt: 0,
  };
}

/** The account store over `kv` for the account `uid`; methods not modelled throw when called. */
export function kvAccounts(kv: Kv, uid: string): AccountRepo {
  const modelled = new KvAccounts(kv, uid);
  return new Proxy(modelled, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value === 'function') return value.bind(target);
      // Not `then`: the store must not look like a promise to whoever awaits something holding it.
      if (typeof property !== 'string' || property === 'then') return value;
      return () => Promise.reject(new Error(`the explorer's account store does not model ${String(property)}`));
    },
  }) as unknown as AccountRepo;
}
