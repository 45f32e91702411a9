/**
 * `latchkey import`: moves accounts from an octo-server database into latchkey's account store.
 *
 * - The uid is kept, so IM channels, friends and messages keyed by uid stay the user's.
 * - bcrypt hashes are kept as they are: the password login verifies them and rehashes to argon2id.
 * - Legacy hex(MD5(hex(MD5(pw)))) hashes are unsalted MD5, not a password hash: they are never
 *   stored as they are, but wrapped in argon2id (passwords.ts), rehashed at the next login.
 * - Disabled accounts (status 0) arrive banned, in the same INSERT, so a crash half-way can never
 *   leave one active. Destroyed accounts (is_destroy 1) are not imported: their owner deleted them.
 * - Phone numbers arrive verified: octo-server registers a phone only with an SMS code sent to it,
 *   so code login and reset may find them. Emails arrive unverified: octo-server stored whatever was
 *   typed, so an email is only a claim until its owner proves it (POST /v1/user/verify_address).
 * - Idempotent: a uid already in latchkey is skipped and never overwritten (it may have logged in,
 *   changed its password or been banned here since). A username, email or phone that another
 *   account already holds — case-insensitively — is reported, never merged into that account.
 */
import type { AccountRepo, NewUser, Role, UniqueField, User } from '../ports/accounts.ts';
import { UniqueViolation } from '../ports/accounts.ts';
import type { Clock } from '../ports/clock.ts';
import { LEGACY_MD5 } from '../adapters/passwords/argon2-hasher.ts';
import type { PasswordHasher } from '../ports/password-hasher.ts';
import { usernameKey } from '../core/usernames.ts';
import type { OctoUserRow } from '../adapters/octo-mysql/octo-user-source.ts';

export type ConflictField = UniqueField | 'uid';

export interface ImportConflict {
  readonly uid: string;
  /** What another latchkey account (or an earlier row of this import) already holds. */
  readonly field: ConflictField;
}

export interface ImportReport {
  readonly dryRun: boolean;
  read: number;
  /** Written (in a dry run: would be written). */
  imported: number;
  /** Of those: arrived banned (octo status 0). */
  banned: number;
  /** Of those: bcrypt hash kept, rehashed to argon2id at the next login. */
  bcrypt: number;
  /** Of those: legacy double-MD5, wrapped in argon2id. */
  legacyMd5: number;
  /** Of those: no usable password (SSO-only, or a value that is no known hash): code login or reset. */
  noPassword: number;
  /** Of those: an empty username, replaced by the uid. */
  usernameFromUid: number;
  skippedExisting: number;
  skippedDestroyed: number;
  readonly conflicts: ImportConflict[];
}

export interface ImportDeps {
  readonly accounts: AccountRepo;
  readonly hasher: PasswordHasher;
  readonly clock: Clock;
}

const BCRYPT = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;

type PasswordKind = 'bcrypt' | 'legacyMd5' | 'none';

function passwordKind(stored: string): PasswordKind {
  if (BCRYPT.test(stored)) return 'bcrypt';
  if (LEGACY_MD5.test(stored)) return 'legacyMd5';
  return 'none';
}

/** `0086` and `+86` are both octo-server spellings of the zone latchkey writes as `86`. */
function normalizeZone(zone: string): string | null {
  const digits = zone.replace(/^\+/, '').replace(/^0+/, '');
  return /^\d{1,6}$/.test(digits) ? digits : null;
}

function roleOf(octoRole: string): Role {
  return octoRole === 'admin' || octoRole === 'superAdmin' ? 'admin' : 'user';
}

/** The latchkey account a row becomes, before its password is settled. */
function accountOf(row: OctoUserRow): Omit<NewUser, 'passwordHash'> {
  const username = row.username === '' ? row.uid : row.username;
  const phone = row.phone === '' ? null : row.phone;
  return {
    uid: row.uid,
    username,
    name: row.name === '' ? username : row.name,
    email: row.email === '' ? null : row.email,
    zone: phone === null ? null : normalizeZone(row.zone),
    phone,
    phoneVerified: phone !== null,
    role: roleOf(row.role),
    status: row.status === 1 ? 'active' : 'banned',
  };
}

/** Case-folded keys of the unique fields, for collisions within this run (a dry run writes nothing). */
function uniqueKeys(user: Omit<NewUser, 'passwordHash'>): [UniqueField, string][] {
  const keys: [UniqueField, string][] = [['username', usernameKey(user.username)]];
  if (user.email) keys.push(['email', user.email.toLowerCase()]);
  if (user.zone && user.phone) keys.push(['phone', `${user.zone}-${user.phone}`]);
  return keys;
}

async function heldElsewhere(accounts: AccountRepo, user: Omit<NewUser, 'passwordHash'>): Promise<UniqueField | null> {
  const holders: [UniqueField, () => Promise<User | null>][] = [
    ['username', () => accounts.findByUsername(user.username)],
    ['email', async () => (user.email ? accounts.findByEmail(user.email) : null)],
    ['phone', async () => (user.zone && user.phone ? accounts.findByPhone(user.zone, user.phone) : null)],
  ];
  for (const [field, find] of holders) {
    const holder = await find();
    if (holder !== null && holder.uid !== user.uid) return field;
  }
  return null;
}

export function emptyReport(dryRun: boolean): ImportReport {
  return {
    dryRun, read: 0, imported: 0, banned: 0, bcrypt: 0, legacyMd5: 0, noPassword: 0, usernameFromUid: 0,
    skippedExisting: 0, skippedDestroyed: 0, conflicts: [],
  };
}

export async function importOctoUsers(
  deps: ImportDeps,
  rows: AsyncIterable<OctoUserRow>,
  options: { readonly dryRun: boolean },
): Promise<ImportReport> {
  const report = emptyReport(options.dryRun);
  const taken = new Set<string>();
  for await (const row of rows) {
    report.read += 1;
    await importRow(deps, row, report, taken);
  }
  return report;
}

async function importRow(deps: ImportDeps, row: OctoUserRow, report: ImportReport, taken: Set<string>): Promise<void> {
  if (row.isDestroy === 1) {
    report.skippedDestroyed += 1;
    return;
  }
  if (row.uid === '') {
    report.conflicts.push({ uid: `(row id ${row.id})`, field: 'uid' });
    return;
  }
  const account = accountOf(row);
  const existing = await deps.accounts.findByUid(row.uid);
  if (existing !== null) {
    // The same account from an earlier run, or — should two systems ever mint one uid — someone else.
    if (usernameKey(existing.username) === usernameKey(account.username)) report.skippedExisting += 1;
    else report.conflicts.push({ uid: row.uid, field: 'uid' });
    return;
  }
  const keys = uniqueKeys(account);
  const clash = keys.find(([field, key]) => taken.has(`${field}:${key}`))?.[0] ?? (await heldElsewhere(deps.accounts, account));
  if (clash !== null) {
    report.conflicts.push({ uid: row.uid, field: clash });
    return;
  }
  const kind = passwordKind(row.password);
  if (!report.dryRun) {
    const passwordHash = kind === 'bcrypt' ? row.password : kind === 'legacyMd5' ? await deps.hasher.wrapLegacyMd5(row.password) : null;
    try {
      await deps.accounts.createUser({ ...account, passwordHash }, row.createdAt ?? deps.clock.now());
    } catch (error) {
      // A latchkey node registered the same name between the check above and this insert.
      if (!(error instanceof UniqueViolation)) throw error;
      report.conflicts.push({ uid: row.uid, field: error.field });
      return;
    }
  }
  for (const [field, key] of keys) taken.add(`${field}:${key}`);
  report.imported += 1;
  if (account.status === 'banned') report.banned += 1;
  if (kind === 'bcrypt') report.bcrypt += 1;
  else if (kind === 'legacyMd5') report.legacyMd5 += 1;
  else report.noPassword += 1;
  if (row.username === '') report.usernameFromUid += 1;
}

/** The report as the CLI prints it: counts, then one line per conflict (uid and field only: no PII). */
export function formatImportReport(report: ImportReport): string {
  const verb = report.dryRun ? 'would import' : 'imported';
  const lines = [
    `${report.dryRun ? 'dry run: nothing written\n' : ''}read ${report.read} row(s)`,
    `${verb} ${report.imported}: ${report.bcrypt} bcrypt (kept; rehashed to argon2id at next login), ` +
      `${report.legacyMd5} legacy MD5 (wrapped in argon2id; rehashed at next login), ` +
      `${report.noPassword} without a password (one-time code login or reset), ${report.banned} banned, ` +
      `${report.usernameFromUid} with the uid as username (it was empty)`,
    `skipped ${report.skippedExisting} already imported, ${report.skippedDestroyed} destroyed`,
    `conflicts ${report.conflicts.length}${report.conflicts.length > 0 ? ' (not imported; resolve, then run again):' : ''}`,
    ...report.conflicts.map((conflict) => `  uid ${conflict.uid}: ${conflict.field} already taken`),
  ];
  return `${lines.join('\n')}\n`;
}
