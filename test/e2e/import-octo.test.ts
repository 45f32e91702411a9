/**
 * `latchkey import` against a real MariaDB holding an octo-server `user` table, then password
 * logins over HTTP with the imported accounts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { hash as bcryptHash } from 'bcryptjs';
import mysql from 'mysql2/promise';
import { openAccountStore, type AccountStore } from '../../src/adapters/db/open.ts';
import { call, startTestServer } from '../support/server.ts';
import { MARIADB_URL, skipUnless } from '../support/services.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** octo-server's CREATE TABLE, reduced to the columns the import reads (modules/user/db.go Model). */
const OCTO_USER_TABLE = `CREATE TABLE \`user\` (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  uid VARCHAR(40) NOT NULL DEFAULT '',
  name VARCHAR(100) NOT NULL DEFAULT '',
  username VARCHAR(40) NOT NULL DEFAULT '',
  email VARCHAR(100) NOT NULL DEFAULT '',
  zone VARCHAR(40) NOT NULL DEFAULT '',
  phone VARCHAR(20) NOT NULL DEFAULT '',
  password VARCHAR(255) NOT NULL DEFAULT '',
  status SMALLINT NOT NULL DEFAULT 1,
  is_destroy SMALLINT NOT NULL DEFAULT 0,
  role VARCHAR(40) NOT NULL DEFAULT '',
  robot SMALLINT NOT NULL DEFAULT 0,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
)`;

const md5Hex = (input: string) => createHash('md5').update(input, 'utf8').digest('hex');

interface Cli {
  status: number | null;
  stdout: string;
  stderr: string;
}

function latchkeyImport(dbUrl: string, from: string, ...extra: string[]): Cli {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('LATCHKEY_')) env[key] = value;
  const result = spawnSync(process.execPath, ['src/cli.ts', 'import', '--from', from, ...extra], {
    cwd: REPO_ROOT, env: { ...env, LATCHKEY_DB: dbUrl }, encoding: 'utf8', timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('latchkey import from an octo-server MariaDB', { skip: await skipUnless('mariadb') }, () => {
  const database = `lk_import_${randomBytes(6).toString('hex')}`;
  const from = new URL(MARIADB_URL);
  from.pathname = `/${database}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-import-'));
  const dbUrl = `sqlite:${join(dataDir, 'latchkey.db')}`;
  let admin: mysql.Connection;
  let store: AccountStore;
  let goBcrypt = '';

  before(async () => {
    admin = await mysql.createConnection({ uri: MARIADB_URL });
    await admin.query(`CREATE DATABASE \`${database}\``);
    await admin.query(`USE \`${database}\``);
    await admin.query(OCTO_USER_TABLE);
    // Go's bcrypt at cost 10, as octo-server writes it: $2a$ (bcryptjs writes $2b$, the same algorithm).
    goBcrypt = `$2a$${(await bcryptHash('bcrypt password 1', 10)).slice(4)}`;
    const rows: Record<string, string | number>[] = [
      { uid: 'u_bcrypt', username: 'bcryptuser', name: 'Bea', email: 'Bea@Example.test', zone: '0086', phone: '13800000001',
        password: goBcrypt, role: 'superAdmin', created_at: '2021-04-05 06:07:08' },
      { uid: 'u_md5', username: 'md5user', name: 'Max', password: md5Hex(md5Hex('md5 password 12')) },
      { uid: 'u_banned', username: 'banneduser', password: await bcryptHash('banned password', 4), status: 0 },
      { uid: 'u_gone', username: 'goneuser', password: await bcryptHash('gone password', 4), is_destroy: 1 },
      // An SSO-created account: no password, no username.
      { uid: 'u_sso', username: '', email: 'sso@example.test', password: '' },
      // Case-insensitively the same username as an account latchkey already has.
      { uid: 'u_clash', username: 'Alice', password: await bcryptHash('clash password', 4) },
    ];
    for (const row of rows) await admin.query('INSERT INTO `user` SET ?', [row]);
    store = await openAccountStore(dbUrl);
    await store.repo.createUser({ uid: 'latchkey-alice', username: 'alice', name: 'alice', passwordHash: null }, Date.now());
  });

  after(async () => {
    await store?.close();
    await admin?.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await admin?.end();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('--dry-run reports what it would do and writes nothing', () => {
    const run = latchkeyImport(dbUrl, from.toString(), '--dry-run');
    assert.equal(run.status, 2, run.stderr + run.stdout);
    assert.match(run.stdout, /dry run: nothing written/);
    assert.match(run.stdout, /would import 4: 2 bcrypt .*, 1 legacy MD5 .*, 1 without a password .*, 1 banned, 1 with the uid as username/);
    assert.match(run.stdout, /skipped 0 already imported, 1 destroyed/);
    assert.match(run.stdout, /uid u_clash: username already taken/);
    return store.repo.findByUid('u_bcrypt').then((user) => assert.equal(user, null));
  });

  it('imports: bcrypt kept, MD5 wrapped, disabled banned, destroyed skipped, a colliding username reported', async () => {
    const run = latchkeyImport(dbUrl, from.toString());
    assert.equal(run.status, 2, run.stderr + run.stdout);
    assert.match(run.stdout, /imported 4: 2 bcrypt/);
    assert.match(run.stdout, /conflicts 1 .*\n {2}uid u_clash: username already taken/);
    // Only uids and field names in the output: no email or phone number.
    assert.doesNotMatch(run.stdout, /13800000001|example\.test/i);

    const bea = await store.repo.findByUid('u_bcrypt');
    assert.ok(bea);
    assert.equal(bea.passwordHash, goBcrypt);
    assert.deepEqual(
      [bea.username, bea.name, bea.email, bea.zone, bea.phone, bea.role, bea.status, bea.createdAt],
      ['bcryptuser', 'Bea', 'Bea@Example.test', '86', '13800000001', 'admin', 'active', Date.UTC(2021, 3, 5, 6, 7, 8)],
    );
    const max = await store.repo.findByUid('u_md5');
    assert.match(max?.passwordHash ?? '', /^octo-md5md5:\$argon2id\$/);
    assert.equal((await store.repo.findByUid('u_banned'))?.status, 'banned');
    assert.equal(await store.repo.findByUid('u_gone'), null);
    const sso = await store.repo.findByUid('u_sso');
    assert.deepEqual([sso?.username, sso?.passwordHash], ['u_sso', null]);
    assert.equal(await store.repo.findByUid('u_clash'), null);
    assert.equal((await store.repo.findByUsername('alice'))?.uid, 'latchkey-alice');
  });

  it('running it again skips what is there and overwrites nothing', async () => {
    await store.repo.setStatus('u_banned', 'active', Date.now());
    const run = latchkeyImport(dbUrl, from.toString());
    assert.equal(run.status, 2, run.stderr + run.stdout);
    assert.match(run.stdout, /imported 0/);
    assert.match(run.stdout, /skipped 4 already imported, 1 destroyed/);
    // An unban done in latchkey since the first run stands.
    assert.equal((await store.repo.findByUid('u_banned'))?.status, 'active');
    await store.repo.setStatus('u_banned', 'banned', Date.now());
  });

  it('the imported accounts log in over HTTP; bcrypt and MD5 hashes become argon2id', async () => {
    const server = await startTestServer({ data_dir: dataDir });
    try {
      const bea = await call(server, 'POST', '/v1/user/login', { username: 'bcryptuser', password: 'bcrypt password 1', flag: 0 });
      assert.equal(bea.status, 200, JSON.stringify(bea.body));
      assert.deepEqual([bea.body.uid, bea.body.role], ['u_bcrypt', 'admin']);
      assert.match((await store.repo.findByUid('u_bcrypt'))?.passwordHash ?? '', /^\$argon2id\$/);
      // The phone number, with the zone as latchkey writes it.
      const byPhone = await call(server, 'POST', '/v1/user/login', { username: '86-13800000001', password: 'bcrypt password 1', flag: 1 });
      assert.equal(byPhone.status, 200, JSON.stringify(byPhone.body));

      const wrong = await call(server, 'POST', '/v1/user/login', { username: 'md5user', password: 'md5 password 13', flag: 0 });
      assert.equal(wrong.status, 401);
      const max = await call(server, 'POST', '/v1/user/login', { username: 'md5user', password: 'md5 password 12', flag: 0 });
      assert.equal(max.status, 200, JSON.stringify(max.body));
      assert.match((await store.repo.findByUid('u_md5'))?.passwordHash ?? '', /^\$argon2id\$/);

      const banned = await call(server, 'POST', '/v1/user/login', { username: 'banneduser', password: 'banned password', flag: 0 });
      assert.deepEqual([banned.status, banned.body.code], [403, 'account_disabled']);
      const gone = await call(server, 'POST', '/v1/user/login', { username: 'goneuser', password: 'gone password', flag: 0 });
      assert.deepEqual([gone.status, gone.body.code], [401, 'invalid_credentials']);
    } finally {
      await server.stop();
    }
  });
});
