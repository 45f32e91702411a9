/**
 * Reads the `user` table of an octo-server (TangSengDaoDao lineage) MySQL/MariaDB database for
 * `latchkey import`. Read-only: one SELECT per page, in primary-key order, so a table of millions
 * of rows is never held in memory and a re-run walks the rows in the same order.
 */
import mysql from 'mysql2/promise';

/** One octo-server account, as stored there (docs/octo-server.md §4; octo-server's modules/user/db.go). */
export interface OctoUserRow {
  readonly id: number;
  readonly uid: string;
  readonly username: string;
  readonly name: string;
  readonly email: string;
  /** `0086`-style country code. */
  readonly zone: string;
  readonly phone: string;
  /** bcrypt `$2a$…`, legacy hex(MD5(hex(MD5(pw)))), or empty (SSO-only accounts). */
  readonly password: string;
  /** 0 disabled, 1 enabled. */
  readonly status: number;
  /** 1 when the owner deleted the account. */
  readonly isDestroy: number;
  /** '' | 'admin' | 'superAdmin'. */
  readonly role: string;
  /** Epoch ms, or null when the table has no created_at. */
  readonly createdAt: number | null;
}

export interface OctoUserSource {
  rows(): AsyncIterable<OctoUserRow>;
  close(): Promise<void>;
}

const REQUIRED_COLUMNS = ['id', 'uid', 'username', 'password', 'status'] as const;
/** Columns added over octo-server's history; an older table may lack them. */
const OPTIONAL_COLUMNS = { name: "''", email: "''", zone: "''", phone: "''", role: "''", is_destroy: '0', created_at: 'NULL' } as const;
const PAGE_SIZE = 500;

type Row = Record<string, unknown>;

export async function openOctoUserSource(url: string, table = 'user'): Promise<OctoUserSource> {
  if (!url.startsWith('mysql://')) throw new Error('--from must be a mysql://user:pass@host:port/db URL');
  if (!/^[A-Za-z0-9_]+$/.test(table)) throw new Error(`bad table name ${JSON.stringify(table)}`);
  const connection = await mysql.createConnection({ uri: url, connectTimeout: 5000, dateStrings: true, supportBigNumbers: true });
  try {
    // TIMESTAMP columns are then returned in UTC, whatever the server's zone; epochMs() reads them so.
    await connection.query("SET time_zone = '+00:00'");
    const select = await selectList(connection, table);
    return {
      rows: () => pages(connection, table, select),
      close: () => connection.end(),
    };
  } catch (error) {
    await connection.end();
    throw error;
  }
}

async function selectList(connection: mysql.Connection, table: string): Promise<string> {
  const [found] = await connection.query<mysql.RowDataPacket[]>(
    'SELECT column_name AS name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?',
    [table],
  );
  const columns = new Set(found.map((row) => String(row.name).toLowerCase()));
  if (columns.size === 0) throw new Error(`table ${table} not found in the source database`);
  const missing = REQUIRED_COLUMNS.filter((column) => !columns.has(column));
  if (missing.length > 0) throw new Error(`table ${table} has no column ${missing.join(', ')}: is it octo-server's user table?`);
  const optional = Object.entries(OPTIONAL_COLUMNS).map(([column, fallback]) =>
    columns.has(column) ? `\`${column}\`` : `${fallback} AS \`${column}\``);
  return [...REQUIRED_COLUMNS.map((column) => `\`${column}\``), ...optional].join(', ');
}

async function* pages(connection: mysql.Connection, table: string, select: string): AsyncGenerator<OctoUserRow> {
  let after = -1;
  for (;;) {
    const [rows] = await connection.query<mysql.RowDataPacket[]>(
      `SELECT ${select} FROM \`${table}\` WHERE id > ? ORDER BY id LIMIT ?`,
      [after, PAGE_SIZE],
    );
    for (const row of rows) yield toOctoUser(row);
    const last = rows.at(-1);
    if (last === undefined || rows.length < PAGE_SIZE) return;
    after = Number(last.id);
  }
}

function toOctoUser(row: Row): OctoUserRow {
  return {
    id: Number(row.id),
    uid: text(row.uid),
    username: text(row.username),
    name: text(row.name),
    email: text(row.email),
    zone: text(row.zone),
    phone: text(row.phone),
    password: text(row.password),
    status: Number(row.status ?? 0),
    isDestroy: Number(row.is_destroy ?? 0),
    role: text(row.role),
    createdAt: epochMs(row.created_at),
  };
}

function text(value: unknown): string {
  if (value === null || value === undefined) return '';
  return (Buffer.isBuffer(value) ? value.toString('utf8') : String(value)).trim();
}

function epochMs(value: unknown): number | null {
  if (typeof value !== 'string' || value === '' || value.startsWith('0000')) return null;
  const parsed = Date.parse(`${value.replace(' ', 'T')}Z`);
  return Number.isFinite(parsed) ? parsed : null;
}
