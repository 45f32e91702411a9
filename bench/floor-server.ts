/**
 * The floor of latchkey's own design: a Fastify route that does what every validation must do —
 * one read of the session from the store, its JSON parsed, its expiry checked — and nothing else.
 * latchkey reads the store on every request (what makes a logout final on every node at once), so
 * no validation can be faster than this route on the same store.
 *
 *   node bench/floor-server.ts redis <redis://…>   one auto-pipelined ioredis GET per request,
 *                                                   the client configured as latchkey configures it
 *   node bench/floor-server.ts sqlite <file>       one prepared node:sqlite lookup per request,
 *                                                   the file opened as latchkey's SQLite Kv opens it
 *
 * It seeds FLOOR_SESSIONS records itself (keys `sess:<floorToken(i)>`); the load sends the token in
 * the `token` header, as latchkey's does. A missing or expired record answers 401.
 */
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { DatabaseSync } from 'node:sqlite';
import { floorRecord, floorToken } from './floor.ts';

const [store, location] = process.argv.slice(2);
const count = Number(process.env.FLOOR_SESSIONS ?? 1000);
if ((store !== 'redis' && store !== 'sqlite') || location === undefined) throw new Error('usage: floor-server.ts redis|sqlite <url|file>');

type Read = (key: string) => Promise<string | null> | string | null;

function redisRead(url: string): { read: Read; seed: () => Promise<void>; close: () => Promise<void> } {
  // src/adapters/redis/redis-connection.ts's options for a single Redis, GET auto-pipelined.
  const client = new Redis(url, {
    commandTimeout: 900, connectTimeout: 2000, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false,
    enableAutoPipelining: true, enableOfflineQueue: false, keyPrefix: '',
  });
  const ready = new Promise((resolve) => client.once('ready', resolve));
  return {
    read: (key) => client.get(key),
    seed: async () => {
      await ready;
      const pipeline = client.pipeline();
      for (let i = 0; i < count; i += 1) pipeline.set(`sess:${floorToken(i)}`, floorRecord(i), 'PX', 3_600_000);
      await pipeline.exec();
    },
    close: async () => {
      client.disconnect();
    },
  };
}

function sqliteRead(file: string): { read: Read; seed: () => Promise<void>; close: () => Promise<void> } {
  // As src/adapters/sqlite/sqlite-kv.ts opens the file and reads a string key.
  const db = new DatabaseSync(file, { timeout: 20 });
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
  db.exec(`PRAGMA mmap_size = ${2 ** 30}`);
  db.exec('CREATE TABLE IF NOT EXISTS kv_strings (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at INTEGER) STRICT, WITHOUT ROWID');
  const get = db.prepare('SELECT value FROM kv_strings WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)');
  return {
    read: (key) => {
      const row = get.get(key, Date.now());
      return row === undefined ? null : String(row.value);
    },
    seed: async () => {
      const insert = db.prepare('INSERT OR REPLACE INTO kv_strings (key, value, expires_at) VALUES (?, ?, ?)');
      db.exec('BEGIN');
      for (let i = 0; i < count; i += 1) insert.run(`sess:${floorToken(i)}`, floorRecord(i), Date.now() + 3_600_000);
      db.exec('COMMIT');
    },
    close: async () => {
      db.close();
    },
  };
}

const backend = store === 'redis' ? redisRead(location) : sqliteRead(location);
await backend.seed();

const app = Fastify({ logger: false });
app.get('/healthz', async () => ({ ok: true }));
app.get('/', async (request, reply) => {
  const token = request.headers.token;
  const raw = typeof token === 'string' ? await backend.read(`sess:${token}`) : null;
  const session = raw === null ? null : (JSON.parse(raw) as { expires_at: number });
  if (session === null || session.expires_at <= Date.now()) return reply.code(401).send({ status: 401, code: 'unauthorized' });
  return { session };
});
await app.listen({ host: '127.0.0.1', port: 0 });

const address = app.server.address();
const port = typeof address === 'object' && address !== null ? address.port : 0;
process.stdout.write(`${JSON.stringify({ msg: 'floor listening', url: `http://127.0.0.1:${port}` })}\n`);

const stop = () => {
  app.close().then(backend.close).then(() => process.exit(0), () => process.exit(1));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
