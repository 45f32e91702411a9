/**
 * Turns SQLite and PostgreSQL driver errors into the port's errors: a unique-key collision becomes
 * UniqueViolation (naming the field), a lost or unreachable database becomes StoreUnavailableError
 * (a 503, not a 500). Anything else is a bug and passes through unchanged.
 */
import { UniqueViolation, type UniqueField } from '../../ports/accounts.ts';
import { StoreUnavailableError } from '../../ports/errors.ts';
import { USERS_EMAIL_UNIQUE, USERS_PHONE_UNIQUE, USERS_USERNAME_UNIQUE } from './schema.ts';

/**
 * Waits for a query and rethrows its failure as the port's error (UniqueViolation,
 * StoreUnavailableError, or what `translate` makes of it).
 */
export async function guard<T>(query: Promise<T>, translate: (error: unknown) => unknown = translateDbError): Promise<T> {
  try {
    return await query;
  } catch (error) {
    throw translate(error);
  }
}

export function translateDbError(error: unknown): unknown {
  const field = uniqueFieldOf(error);
  if (field) return new UniqueViolation(field);
  if (isUnavailable(error)) return new StoreUnavailableError('account database unavailable', { cause: error });
  return error;
}

const PG_UNIQUE_VIOLATION = '23505';
const PG_CONSTRAINT_FIELDS: Record<string, UniqueField> = {
  [USERS_USERNAME_UNIQUE]: 'username',
  [USERS_EMAIL_UNIQUE]: 'email',
  [USERS_PHONE_UNIQUE]: 'phone',
};

// SQLite names the columns, not the constraint: `UNIQUE constraint failed: users.zone, users.phone`.
const SQLITE_UNIQUE_PREFIX = 'UNIQUE constraint failed: ';
const SQLITE_COLUMN_FIELDS: Record<string, UniqueField> = {
  'users.username_lower': 'username',
  'users.email_lower': 'email',
  'users.zone, users.phone': 'phone',
};

function uniqueFieldOf(error: unknown): UniqueField | null {
  if (!(error instanceof Error)) return null;
  const { code, constraint } = error as { code?: unknown; constraint?: unknown };
  if (code === PG_UNIQUE_VIOLATION && typeof constraint === 'string') {
    return PG_CONSTRAINT_FIELDS[constraint] ?? null;
  }
  if (code === 'ERR_SQLITE_ERROR' && error.message.startsWith(SQLITE_UNIQUE_PREFIX)) {
    return SQLITE_COLUMN_FIELDS[error.message.slice(SQLITE_UNIQUE_PREFIX.length)] ?? null;
  }
  return null;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH',
]);
// 57P01-03: server shutting down or starting; 53300: too many connections; 57014: statement timeout.
const PG_UNAVAILABLE_CODES = new Set(['57P01', '57P02', '57P03', '53300', '57014']);
// pg and pg-pool report a dropped connection or a timeout only in the message.
// `not queryable`: a query on a checked-out client whose connection had already dropped.
const UNAVAILABLE_MESSAGE = /connection terminated|timeout exceeded when trying to connect|query read timeout|not queryable/i;
// SQLITE_BUSY: another writer held the lock past busy_timeout.
const SQLITE_BUSY = 5;

function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof AggregateError && error.errors.some(isUnavailable)) return true;
  const { code, errcode } = error as { code?: unknown; errcode?: unknown };
  if (typeof code === 'string') {
    // SQLSTATE class 08 is "connection exception".
    if (NETWORK_CODES.has(code) || PG_UNAVAILABLE_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return true;
    if (code === 'ERR_SQLITE_ERROR' && typeof errcode === 'number' && (errcode & 0xff) === SQLITE_BUSY) return true;
  }
  return UNAVAILABLE_MESSAGE.test(error.message);
}
