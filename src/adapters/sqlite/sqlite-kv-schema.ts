/**
 * Tables and prepared statements of the SQLite Kv. The tables share the account database's file
 * (docs/design.md §2), hence the `kv_` prefix.
 *
 * A row past its `expires_at` stays on disk until the sweep, so every statement carries the
 * liveness condition itself: `:now` is bound on each call, from the adapter's Clock.
 */
import type { DatabaseSync } from 'node:sqlite';

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS kv_strings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  expires_at INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_strings_expiry ON kv_strings (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS kv_hashes (
  key TEXT NOT NULL,
  field TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (key, field)
) STRICT, WITHOUT ROWID;

-- A row only for a hash that has a TTL; deleted together with the hash's last field.
CREATE TABLE IF NOT EXISTS kv_hash_expiry (
  key TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_hash_expiry_expiry ON kv_hash_expiry (expires_at);
`;

const LIVE_STRING = '(expires_at IS NULL OR expires_at > :now)';
const LIVE_HASH = 'NOT EXISTS (SELECT 1 FROM kv_hash_expiry e WHERE e.key = :key AND e.expires_at <= :now)';

export function prepareStatements(db: DatabaseSync) {
  const sql = (text: string) => db.prepare(text);
  return {
    // The hot path (every authenticated request): the keys read in one event-loop turn, looked up
    // together (read-batch.ts). ?1 is a JSON array of keys, ?2 now; positional, as binding by name
    // cost a third of a lookup.
    getMany: sql(
      'SELECT key, value FROM kv_strings WHERE key IN (SELECT value FROM json_each(?1)) AND (expires_at IS NULL OR expires_at > ?2)',
    ),
    getRow: sql(`SELECT value, expires_at FROM kv_strings WHERE key = :key AND ${LIVE_STRING}`),
    /** Plain SET; with :keepTtl = 1 a live row keeps its expiry (SET KEEPTTL). */
    upsert: sql(`
      INSERT INTO kv_strings (key, value, expires_at) VALUES (:key, :value, :expiresAt)
      ON CONFLICT (key) DO UPDATE SET
        value = excluded.value,
        expires_at = CASE WHEN :keepTtl AND ${LIVE_STRING} THEN expires_at ELSE excluded.expires_at END`),
    /** SET NX: an expired row counts as absent and is overwritten. */
    insertIfAbsent: sql(`
      INSERT INTO kv_strings (key, value, expires_at) VALUES (:key, :value, :expiresAt)
      ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
      WHERE NOT ${LIVE_STRING}`),
    /** SET XX, and compare-and-set when :expected is bound (NULL matches any value). */
    updateIfPresent: sql(`
      UPDATE kv_strings SET
        value = :value,
        expires_at = CASE WHEN :keepTtl THEN expires_at ELSE :expiresAt END
      WHERE key = :key AND ${LIVE_STRING} AND (:expected IS NULL OR value = :expected)`),
    takeString: sql(`DELETE FROM kv_strings WHERE key = :key AND ${LIVE_STRING} RETURNING value`),
    deleteString: sql('DELETE FROM kv_strings WHERE key = :key'),
    deleteStringIf: sql(`DELETE FROM kv_strings WHERE key = :key AND value = :expected AND ${LIVE_STRING}`),
    setStringExpiry: sql(`UPDATE kv_strings SET expires_at = :expiresAt WHERE key = :key AND ${LIVE_STRING}`),

    hget: sql(`SELECT value FROM kv_hashes WHERE key = :key AND field = :field AND ${LIVE_HASH}`),
    hgetall: sql(`SELECT field, value FROM kv_hashes WHERE key = :key AND ${LIVE_HASH}`),
    hashExists: sql(`SELECT 1 AS present FROM kv_hashes WHERE key = :key AND ${LIVE_HASH} LIMIT 1`),
    hashExpiry: sql('SELECT expires_at FROM kv_hash_expiry WHERE key = :key'),
    hset: sql(`
      INSERT INTO kv_hashes (key, field, value) VALUES (:key, :field, :value)
      ON CONFLICT (key, field) DO UPDATE SET value = excluded.value`),
    hdel: sql(`DELETE FROM kv_hashes WHERE key = :key AND field = :field AND ${LIVE_HASH}`),
    /** Drops an expired hash so that HSET starts a new one, without the old fields or TTL. */
    purgeExpiredHash: sql(`
      DELETE FROM kv_hashes WHERE key = :key
        AND EXISTS (SELECT 1 FROM kv_hash_expiry e WHERE e.key = :key AND e.expires_at <= :now)`),
    deleteHash: sql('DELETE FROM kv_hashes WHERE key = :key'),
    /**
     * Removes the TTL row of a hash whose fields are all gone. Never of one that merely expired:
     * its fields would come back to life without it.
     */
    deleteOrphanHashExpiry: sql(`
      DELETE FROM kv_hash_expiry WHERE key = :key
        AND NOT EXISTS (SELECT 1 FROM kv_hashes h WHERE h.key = :key)`),
    setHashExpiry: sql(`
      INSERT INTO kv_hash_expiry (key, expires_at) VALUES (:key, :expiresAt)
      ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at`),

    sweepStrings: sql('DELETE FROM kv_strings WHERE expires_at <= :now'),
    sweepHashes: sql(`
      DELETE FROM kv_hashes WHERE key IN (SELECT key FROM kv_hash_expiry WHERE expires_at <= :now)`),
    sweepHashExpiry: sql('DELETE FROM kv_hash_expiry WHERE expires_at <= :now'),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
