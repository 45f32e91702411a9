/**
 * `latchkey` as an operator runs it: real `node src/cli.ts …` processes, their exit codes and
 * output, and their effect on a running server that shares the same SQLite file.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { call, startTestServer, type TestServer } from '../support/server.ts';
import { describeRun, runLatchkeyCli as runCli } from '../support/cli-run.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PASSWORD = 'correct horse';
/** CLI runs that only spawn and wait go side by side, a few at a time. */
const PARALLEL_RUNS = 4;

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-cli-'));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('latchkey --help', { concurrency: PARALLEL_RUNS }, () => {
  it('the top level prints the usage of every command and exits 0', async () => {
    const run = await runCli(['--help']);
    assert.equal(run.code, 0, describeRun(run));
    assert.equal(run.stderr, '');
    assert.match(run.stdout, /^Usage:/m);
    for (const command of ['serve', 'migrate', 'user create', 'user ban UID', 'user unban UID', 'sessions revoke-all UID']) {
      assert.ok(run.stdout.includes(`latchkey ${command}`), `usage mentions ${command}`);
    }
  });

  const commands: readonly (readonly [args: readonly string[], usage: RegExp])[] = [
    [['serve'], /latchkey serve \[--config FILE\]/],
    [['migrate'], /latchkey migrate \[--config FILE\]/],
    [['user'], /latchkey user create --username U \[--password-stdin\] \[--admin\]/],
    [['user', 'create'], /latchkey user create --username U \[--password-stdin\] \[--admin\]/],
    [['user', 'find'], /latchkey user find QUERY/],
    [['user', 'ban'], /latchkey user ban UID/],
    [['user', 'unban'], /latchkey user unban UID/],
    [['sessions'], /latchkey sessions revoke-all UID/],
    [['sessions', 'revoke-all'], /latchkey sessions revoke-all UID/],
  ];
  for (const [args, usage] of commands) {
    it(`latchkey ${args.join(' ')} --help prints its usage and exits 0`, async () => {
      const run = await runCli([...args, '--help']);
      assert.equal(run.code, 0, describeRun(run));
      assert.match(run.stdout, usage);
      assert.equal(run.stderr, '');
    });
  }

  it('the installed bin entry runs the same CLI, and npm start is latchkey serve', async () => {
    const run = await runCli(['--help'], {}, join(REPO_ROOT, 'bin', 'latchkey.js'));
    assert.equal(run.code, 0, describeRun(run));
    assert.match(run.stdout, /^Usage:/m);
    const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.equal(manifest.scripts.start, 'node src/cli.ts serve');
  });

  it('--help works even when the configuration is bad: it reads none', async () => {
    const run = await runCli(['serve', '--help'], { LATCHKEY_PORT: 'abc' });
    assert.equal(run.code, 0, describeRun(run));
    assert.match(run.stdout, /latchkey serve/);
  });
});

describe('latchkey refuses what it does not know', { concurrency: PARALLEL_RUNS }, () => {
  it('an unknown command is answered in one line naming it, with the usage hint, exit 2', async () => {
    const run = await runCli(['frobnicate']);
    assert.equal(run.code, 2, describeRun(run));
    assert.equal(run.stdout, '');
    assert.equal(run.stderr, 'latchkey: unknown command frobnicate; see `latchkey --help`\n');
  });

  it('an unknown option is answered in one line naming it, with the usage hint, exit 2', async () => {
    for (const args of [['serve', '--frobnicate'], ['user', 'ban', 'x', '--forcce'], ['--verison']]) {
      const run = await runCli(args);
      assert.equal(run.code, 2, describeRun(run));
      assert.equal(run.stdout, '');
      assert.equal(run.stderr.trimEnd().split('\n').length, 1, run.stderr);
      assert.match(run.stderr, new RegExp(`^latchkey: Unknown option '${args.at(-1)}'; see \`latchkey --help\`\n$`));
    }
  });

  it('--version prints the version of package.json and exits 0, reading no configuration', async () => {
    const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    const run = await runCli(['--version'], { LATCHKEY_PORT: 'abc' });
    assert.equal(run.code, 0, describeRun(run));
    assert.equal(run.stdout, `latchkey ${manifest.version}\n`);
    assert.equal(run.stderr, '');
  });

  it('no command at all exits non-zero with the usage', async () => {
    const run = await runCli([]);
    assert.notEqual(run.code, 0, describeRun(run));
    assert.match(run.stdout + run.stderr, /Usage:/);
  });

  it('an unknown user or sessions subcommand exits non-zero with that command\'s usage', async () => {
    const dataDir = tempDir();
    for (const args of [['user', 'delete', 'x'], ['sessions', 'list', 'x']]) {
      const run = await runCli(args, { LATCHKEY_DATA_DIR: dataDir });
      assert.notEqual(run.code, 0, describeRun(run));
      assert.match(run.stderr, new RegExp(`latchkey ${args[0]} `));
    }
  });
});

describe('a bad configuration stops the CLI with one line naming the key (exit 1)', { concurrency: PARALLEL_RUNS }, () => {
  const bad: readonly (readonly [envName: string, value: string, key: string])[] = [
    ['LATCHKEY_PORT', '70000', 'port'],
    ['LATCHKEY_PORT', 'abc', 'port'],
    ['LATCHKEY_STORE', 'mysql://x', 'store'],
    ['LATCHKEY_DB', 'redis://x', 'db'],
    ['LATCHKEY_SESSION_TTL', '5', 'session_ttl'],
    ['LATCHKEY_LOG_LEVEL', 'loud', 'log_level'],
    ['LATCHKEY_TRUST_PROXY', 'garbage', 'trust_proxy'],
  ];
  for (const [envName, value, key] of bad) {
    it(`${envName}=${value}: latchkey serve prints one line naming ${key} and exits 1`, async () => {
      const run = await runCli(['serve'], { [envName]: value, LATCHKEY_DATA_DIR: tempDir() });
      assert.equal(run.code, 1, describeRun(run));
      assert.equal(run.stdout, '', 'nothing else is printed');
      const lines = run.stderr.split('\n').filter((line) => line !== '');
      assert.equal(lines.length, 1, `exactly one line on stderr:\n${run.stderr}`);
      assert.match(lines[0] ?? '', new RegExp(`^latchkey: config ${key}: .*not allowed; expected `));
    });
  }

  it('the operator commands stop the same way', async () => {
    const run = await runCli(['sessions', 'revoke-all', 'someone'], { LATCHKEY_DB: 'redis://x', LATCHKEY_DATA_DIR: tempDir() });
    assert.equal(run.code, 1, describeRun(run));
    assert.equal(run.stdout, '');
    assert.equal(run.stderr.trimEnd().split('\n').length, 1, run.stderr);
    assert.match(run.stderr, /^latchkey: config db: /);
  });

  it('a config file that is not JSON, or missing, stops it with one line naming the config key', async () => {
    const dir = tempDir();
    const file = join(dir, 'latchkey.json');
    writeFileSync(file, '{"port": 9000,');
    for (const [args, env] of [
      [['serve'], { LATCHKEY_CONFIG: file }],
      [['migrate', '--config', join(dir, 'missing.json')], {}],
    ] as const) {
      const run = await runCli(args, env);
      assert.equal(run.code, 1, describeRun(run));
      assert.equal(run.stderr.trimEnd().split('\n').length, 1, run.stderr);
      assert.match(run.stderr, /^latchkey: config config: /);
    }
  });

  it('a bad value in the config file names its key', async () => {
    const dir = tempDir();
    const file = join(dir, 'latchkey.json');
    writeFileSync(file, JSON.stringify({ session_ttl: 5, data_dir: dir }));
    const run = await runCli(['serve', '--config', file]);
    assert.equal(run.code, 1, describeRun(run));
    assert.equal(run.stderr.trimEnd().split('\n').length, 1, run.stderr);
    assert.match(run.stderr, /^latchkey: config session_ttl: 5 is not allowed; expected an integer from 60 to/);
  });
});

describe('latchkey migrate', { concurrency: PARALLEL_RUNS }, () => {
  it('creates the account database in a fresh data directory, exits 0, and is idempotent', async () => {
    const dataDir = join(tempDir(), 'nested', 'data');
    const first = await runCli(['migrate'], { LATCHKEY_DATA_DIR: dataDir });
    assert.equal(first.code, 0, describeRun(first));
    assert.ok(existsSync(join(dataDir, 'latchkey.db')), 'the SQLite file exists under the data directory');
    const second = await runCli(['migrate'], { LATCHKEY_DATA_DIR: dataDir });
    assert.equal(second.code, 0, describeRun(second));
  });

  it('reads the data directory from --config', async () => {
    const dir = tempDir();
    const file = join(dir, 'latchkey.json');
    writeFileSync(file, JSON.stringify({ data_dir: join(dir, 'from-file') }));
    const run = await runCli(['migrate', '--config', file]);
    assert.equal(run.code, 0, describeRun(run));
    assert.ok(existsSync(join(dir, 'from-file', 'latchkey.db')));
  });
});

describe('operator commands against a running server sharing the SQLite file', () => {
  let dataDir: string;
  let server: TestServer;
  let env: Record<string, string>;
  before(async () => {
    dataDir = tempDir();
    env = { LATCHKEY_DATA_DIR: dataDir };
    server = await startTestServer({ data_dir: dataDir });
  });
  after(async () => {
    await server.stop();
  });

  async function cli(...args: string[]): Promise<string> {
    const run = await runCli(args, env);
    assert.equal(run.code, 0, describeRun(run));
    return run.stdout.trim();
  }

  async function cliWithStdin(input: string, ...args: string[]): Promise<string> {
    const run = await runCli(args, env, undefined, input);
    assert.equal(run.stderr, '', 'no warning when the password comes from stdin');
    assert.equal(run.code, 0, describeRun(run));
    return run.stdout.trim();
  }

  async function createUser(username: string, ...extra: string[]): Promise<string> {
    const uid = await cliWithStdin(`${PASSWORD}\n`, 'user', 'create', '--username', username, '--password-stdin', ...extra);
    assert.match(uid, /^[0-9a-f]{32}$/, 'user create prints the new uid');
    return uid;
  }

  async function login(username: string, flag: number, deviceId: string) {
    const answer = await call(server, 'POST', '/v1/user/login', {
      username, password: PASSWORD, flag, device: { device_id: deviceId, device_name: deviceId, device_model: 'test' },
    });
    return answer;
  }

  async function loggedIn(username: string, flag: number, deviceId: string): Promise<{ token: string; uid: string; role: string }> {
    const answer = await login(username, flag, deviceId);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return answer.body;
  }

  const isValid = async (token: string) => (await call(server, 'GET', '/v1/user/current', undefined, token)).status === 200;

  it('user create --admin yields role admin in the login response; without it, role user', async () => {
    const adminUid = await createUser('root', '--admin', '--name', 'Root');
    const admin = await loggedIn('root', 1, 'admin-browser');
    assert.equal(admin.uid, adminUid);
    assert.equal(admin.role, 'admin');

    const userUid = await createUser('carol');
    const user = await loggedIn('carol', 1, 'carol-browser');
    assert.equal(user.uid, userUid);
    assert.equal(user.role, 'user');
  });

  it('user create refuses a username that is taken', async () => {
    await createUser('dave');
    const run = await runCli(['user', 'create', '--username', 'dave', '--password-stdin'], env, undefined, PASSWORD);
    assert.equal(run.code, 1, describeRun(run));
    assert.equal(run.stderr.trimEnd().split('\n').length, 1, run.stderr);
  });

  it('sessions revoke-all run from the CLI kills the sessions a running server issued, and only that user\'s', async () => {
    const uid = await createUser('alice');
    const web = await loggedIn('alice', 1, 'alice-browser');
    const pc = await loggedIn('alice', 2, 'alice-laptop');
    const bystander = await loggedIn('carol', 2, 'carol-laptop');
    assert.ok(await isValid(web.token));
    assert.ok(await isValid(pc.token));

    assert.equal(await cli('sessions', 'revoke-all', uid), 'revoked 2 session(s)');

    assert.equal(await isValid(web.token), false, 'the web session is dead on the running server');
    assert.equal(await isValid(pc.token), false, 'the pc session is dead on the running server');
    assert.ok(await isValid(bystander.token), 'another user keeps their session');
    const again = await loggedIn('alice', 1, 'alice-browser');
    assert.ok(await isValid(again.token), 'revoke-all is not a ban: alice can log in again');
  });

  it('user ban kills existing sessions and login then answers 403 account_disabled; unban lets her back in', async () => {
    const uid = await createUser('erin');
    const app = await loggedIn('erin', 0, 'erin-phone');
    const web = await loggedIn('erin', 1, 'erin-browser');

    assert.equal(await cli('user', 'ban', uid), 'banned; revoked 2 session(s)');

    assert.equal(await isValid(app.token), false);
    assert.equal(await isValid(web.token), false);
    const refused = await login('erin', 1, 'erin-browser');
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'account_disabled');

    assert.equal(await cli('user', 'unban', uid), 'unbanned');
    assert.ok(await isValid((await loggedIn('erin', 1, 'erin-browser')).token));
  });

  it('ban and unban of an unknown uid fail with one line and exit 1', async () => {
    for (const args of [['user', 'ban', 'no-such-uid'], ['user', 'unban', 'no-such-uid']]) {
      const run = await runCli(args, env);
      assert.equal(run.code, 1, describeRun(run));
      assert.equal(run.stderr.trimEnd().split('\n').length, 1, run.stderr);
    }
  });

  it('user find prints uid, username and status of the accounts matching a username, email or phone', async () => {
    const uid = await createUser('frank', '--email', 'frank@example.test');
    await cli('user', 'ban', uid);
    for (const query of ['frank', 'FRANK@example.test']) {
      assert.equal(await cli('user', 'find', query), `${uid}\tfrank\tbanned`);
    }
    const none = await runCli(['user', 'find', 'nobody-has-this'], env);
    assert.equal(none.code, 1, describeRun(none));
    assert.equal(none.stdout, '');
    assert.match(none.stderr, /^latchkey: no account matches "nobody-has-this"\n$/);
    const missing = await runCli(['user', 'find'], env);
    assert.equal(missing.code, 1, describeRun(missing));
    assert.match(missing.stderr, /missing QUERY/);
  });

  it('a password on the command line still works, with a one-line warning that it is visible in the process list', async () => {
    const run = await runCli(['user', 'create', '--username', 'gina', '--password', PASSWORD], env);
    assert.equal(run.code, 0, describeRun(run));
    assert.match(run.stdout, /^[0-9a-f]{32}\n$/);
    assert.equal(run.stderr, 'latchkey: warning: --password is visible to other local users in the process list and stays in shell history; use --password-stdin or the prompt\n');
    assert.equal((await login('gina', 1, 'gina-browser')).status, 200);
  });

  it('without --password, user create reads no argv password: no terminal and no --password-stdin is refused in one line', async () => {
    const run = await runCli(['user', 'create', '--username', 'hank'], env);
    assert.equal(run.code, 1, describeRun(run));
    assert.equal(run.stderr, 'latchkey: no password: pipe it in with --password-stdin, or run in a terminal to be asked\n');
    const empty = await runCli(['user', 'create', '--username', 'hank', '--password-stdin'], env, undefined, '\n');
    assert.equal(empty.code, 1, describeRun(empty));
    assert.match(empty.stderr, /stdin held no password/);
    assert.equal((await runCli(['user', 'find', 'hank'], env)).code, 1, 'no account was made');
  });

  it('user ban without a UID exits non-zero naming what is missing', async () => {
    const run = await runCli(['user', 'ban'], env);
    assert.notEqual(run.code, 0, describeRun(run));
    assert.match(run.stderr, /missing UID/);
  });
});
