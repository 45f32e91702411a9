/**
 * `latchkey <command>`: serve, migrate, and the operator's commands on users and sessions.
 */
import { parseArgs } from 'node:util';
import { loadConfig, type Config } from './config/config.ts';
import type { Runtime } from './runtime/runtime.ts';
import { createLogger } from './logger.ts';
import { createAccount } from './flows/password/password-flow.ts';
import { changeRole, revokeAllSessions, setUserStatus, type Actor } from './flows/account-actions.ts';
import type { PairingMode } from './ops/deployment-id.ts';
import { ARGV_PASSWORD_WARNING, readPassword } from './ops/password-input.ts';
// The server, the stores and their drivers are imported by the commands that use them, so that
// --help and a bad config answer in a tenth of the time it takes to load Fastify and the drivers.

const USAGE = `latchkey — identity and session server for multi-device apps

Usage:
  latchkey serve [--config FILE] [--wait]                run the HTTP server
  latchkey migrate [--config FILE]                       create or update the account database
  latchkey user create --username U [--password-stdin] [--admin] [--name N] [--email E]
                                                         the password is asked for, or read from stdin
  latchkey user find QUERY                               uid, username and status of matching accounts
  latchkey user ban UID                                  ban a user and end all their sessions
  latchkey user unban UID
  latchkey user role UID admin|user                      promote or demote (effective at the next request)
  latchkey sessions revoke-all UID                       end every session of a user
  latchkey audit tail [--uid UID] [--limit N]            the latest audit events, oldest first
  latchkey import --from mysql://user@host:port/db [--password-stdin] [--dry-run]
                                                         copy users from an octo-server database
  latchkey dev-idp [--port 9090] [--latchkey URL]       a local OpenID provider to try SSO with
  latchkey --version                                     the version of latchkey
  latchkey <command> --help                              help for one command

Every command refuses to run when the session store and the account database belong to different
deployments (see README.md, Command line).

Configuration: defaults < JSON file (--config FILE or LATCHKEY_CONFIG) < environment
(LATCHKEY_HOST, LATCHKEY_PORT, LATCHKEY_DATA_DIR, LATCHKEY_STORE, LATCHKEY_STORE_PREFIX,
LATCHKEY_STORE_TLS_CA, LATCHKEY_STORE_MIN_REPLICAS, LATCHKEY_DB, LATCHKEY_TRUST_PROXY,
LATCHKEY_SESSION_TTL, LATCHKEY_SESSION_IDLE_TIMEOUT, LATCHKEY_LOG_LEVEL, LATCHKEY_SERVICE_KEYS,
LATCHKEY_PUBLIC_URL, LATCHKEY_METRICS_HOST, LATCHKEY_METRICS_PORT, LATCHKEY_METRICS_BEARER_KEY). See README.md.
`;

const HELP: Record<string, string> = {
  serve:
    'latchkey serve [--config FILE] [--wait]\n' +
    '  Runs the HTTP server until SIGTERM/SIGINT, then drains in-flight requests and exits.\n' +
    '  A store that does not answer at start stops it with one line (exit 1); with --wait it keeps\n' +
    '  trying, one log line per attempt.\n',
  migrate: 'latchkey migrate [--config FILE]\n  Applies pending account-database migrations (serve also does this at start).\n',
  user:
    'latchkey user create --username U [--password-stdin] [--admin] [--name N] [--email E] [--config FILE]\n' +
    '  The password is asked for (no echo) or, with --password-stdin, read from the first line of stdin.\n' +
    '  --password P still works but is visible to other local users in the process list: it warns.\n' +
    'latchkey user find QUERY [--config FILE]\n' +
    '  One line per account whose username, name, email or phone contains QUERY: uid, username, status.\n' +
    '  Exit status 1 when none does.\n' +
    'latchkey user ban UID [--config FILE]\nlatchkey user unban UID [--config FILE]\n' +
    'latchkey user role UID admin|user [--config FILE]\n' +
    '  Unlike the admin API, these may leave no active admin (a thief may hold the only one): they warn.\n',
  audit: 'latchkey audit tail [--uid UID] [--limit N] [--config FILE]\n  Prints the latest N (default 20, at most 1000) audit events, oldest first, one per line.\n',
  sessions: 'latchkey sessions revoke-all UID [--config FILE]\n  Ends every session of the user on every node.\n',
  'dev-idp':
    'latchkey dev-idp [--port 9090] [--latchkey http://127.0.0.1:8080]\n' +
    '  Development only: starts a local OpenID provider (oidc-provider) on 127.0.0.1 with the test user\n' +
    '  "alice" (any password) and prints the `oidc` config to paste into latchkey\'s config file.\n' +
    '  --latchkey is where latchkey listens (for the callback and logout URLs). Runs until Ctrl-C.\n',
  import:
    'latchkey import --from mysql://user@host:port/db [--password-stdin] [--dry-run] [--config FILE]\n' +
    '  Copies the users of an octo-server database (table `user`) into the account database. Keeps\n' +
    '  uids and bcrypt hashes (rehashed to argon2id at the next login), wraps legacy MD5 hashes in\n' +
    '  argon2id, imports disabled accounts banned, skips destroyed ones and uids already imported.\n' +
    '  Usernames, emails and phones another account holds are reported, not merged (exit status 2).\n' +
    '  The MySQL password is read from stdin with --password-stdin; one left in the URL warns.\n',
};

const OPTIONS = {
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  wait: { type: 'boolean' },
  username: { type: 'string' },
  password: { type: 'string' },
  'password-stdin': { type: 'boolean' },
  name: { type: 'string' },
  email: { type: 'string' },
  admin: { type: 'boolean' },
  port: { type: 'string' },
  latchkey: { type: 'string' },
  from: { type: 'string' },
  'dry-run': { type: 'boolean' },
  uid: { type: 'string' },
  limit: { type: 'string' },
} as const;

type Values = ReturnType<typeof parseCommandLine>['values'];

function parseCommandLine(argv: readonly string[]) {
  return parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
}

/**
 * Opens the runtime once both stores answer and belong to one deployment (ops/deployment-id.ts):
 * 'sessions' for commands that end or read sessions, 'compare' for those that only touch accounts.
 */
async function withRuntime(config: Config, mode: PairingMode, work: (runtime: Runtime) => Promise<void>): Promise<void> {
  const { openCheckedRuntime } = await import('./ops/checked-runtime.ts');
  const { runtime } = await openCheckedRuntime(config, createLogger('warn'), mode);
  try {
    await work(runtime);
  } finally {
    await runtime.close();
  }
}

function required(value: string | undefined, what: string): string {
  if (value === undefined || value === '') throw new UsageError(`missing ${what}`);
  return value;
}

class UsageError extends Error {}

/** Options or a command the CLI does not know: one line and exit status 2, as getopt tools do. */
class UnknownInputError extends Error {}

const USAGE_HINT = 'see `latchkey --help`';

const CLI: Actor = { operator: 'cli', context: { ip: 'cli', userAgent: 'latchkey-cli' } };

export async function main(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseOrRefuse(argv);
  const [command, sub, arg] = positionals;
  if (values.version === true) {
    process.stdout.write(`latchkey ${await packageVersion()}\n`);
    return 0;
  }
  if (command === undefined || (values.help === true && (command === undefined || HELP[command] === undefined))) {
    process.stdout.write(USAGE);
    return command === undefined && values.help !== true ? 1 : 0;
  }
  if (values.help === true) {
    process.stdout.write(HELP[command] ?? USAGE);
    return 0;
  }
  // Before the config: the dev IdP is what a newcomer runs before having one.
  if (command === 'dev-idp') return (await import('./dev-idp-command.ts')).devIdpCommand(values.port, values.latchkey);
  const config = loadConfig({ file: values.config });
  switch (command) {
    case 'serve':
      await (await import('./main.ts')).serve(config, { wait: values.wait === true });
      return -1;
    case 'migrate':
      await (await import('./adapters/db/open.ts')).migrate(config.db);
      // After migrating: a database migrated for the first time gets its deployment id there.
      await withRuntime(config, 'compare', async () => {});
      process.stdout.write('migrations applied\n');
      return 0;
    case 'user':
      return userCommand(config, sub, arg, values, positionals[3]);
    case 'audit':
      if (sub !== 'tail') throw new UsageError(HELP.audit ?? USAGE);
      return (await import('./ops/audit-command.ts')).auditTail(config, values.uid, values.limit);
    case 'import':
      return (await import('./ops/import-command.ts')).importCommand(config, await importSource(required(values.from, '--from'), values), values['dry-run'] === true);
    case 'sessions':
      if (sub !== 'revoke-all') throw new UsageError(HELP.sessions);
      await withRuntime(config, 'sessions', async (runtime) => {
        const uid = required(arg, 'UID');
        const count = await revokeAllSessions(runtime, uid, CLI);
        process.stdout.write(`revoked ${count} session(s)\n`);
      });
      return 0;
    default:
      throw new UnknownInputError(`unknown command ${command}; ${USAGE_HINT}`);
  }
}

function parseOrRefuse(argv: readonly string[]): ReturnType<typeof parseCommandLine> {
  try {
    return parseCommandLine(argv);
  } catch (error) {
    if (!(error instanceof Error && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))) throw error;
    // Node's message goes on about '--' for positionals that start with a dash; the first sentence says it.
    throw new UnknownInputError(`${error.message.replace(/\. To specify [\s\S]*$/, '')}; ${USAGE_HINT}`);
  }
}

async function packageVersion(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const manifest: unknown = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
  return typeof manifest === 'object' && manifest !== null && 'version' in manifest ? String(manifest.version) : 'unknown';
}

/**
 * The MySQL URL of `import --from`, with its password from stdin under --password-stdin. One left
 * in the URL is visible in the process list, as `--password` is: same warning.
 */
async function importSource(from: string, values: Values): Promise<string> {
  if (values['password-stdin'] !== true) {
    if (URL.canParse(from) && new URL(from).password !== '') process.stderr.write(ARGV_PASSWORD_WARNING.replace('--password', 'a password in --from'));
    return from;
  }
  if (!URL.canParse(from)) throw new UsageError('--from must be a mysql:// URL');
  const url = new URL(from);
  url.password = encodeURIComponent(await readPassword({ flag: values.password, fromStdin: true, confirm: false }));
  return url.toString();
}

async function userCommand(config: Config, sub: string | undefined, arg: string | undefined, values: Values, role?: string): Promise<number> {
  if (sub === 'create') return createUser(config, values);
  if (sub === 'find') {
    const query = required(arg, 'QUERY');
    const { findUsers } = await import('./ops/user-find-command.ts');
    let status = 0;
    await withRuntime(config, 'compare', async (runtime) => {
      status = await findUsers(runtime.accounts, query);
    });
    return status;
  }
  if (sub !== 'ban' && sub !== 'unban' && sub !== 'role') throw new UsageError(HELP.user ?? USAGE);
  const uid = required(arg, 'UID');
  if (sub === 'role' && role !== 'admin' && role !== 'user') throw new UsageError('the role is admin or user');
  await withRuntime(config, 'sessions', async (runtime) => {
    if (sub === 'role' && (role === 'admin' || role === 'user')) {
      await changeRole(runtime, uid, role, CLI, { allowLastAdmin: warnNoAdminLeft });
      process.stdout.write(`${uid} is now ${role === 'admin' ? 'an admin' : 'a user'}\n`);
    } else if (sub === 'ban' || sub === 'unban') {
      const count = await setUserStatus(runtime, uid, sub === 'ban' ? 'banned' : 'active', CLI, { allowLastAdmin: warnNoAdminLeft });
      process.stdout.write(sub === 'ban' ? `banned; revoked ${count} session(s)\n` : 'unbanned\n');
    }
  });
  return 0;
}

/** The password is read before any store is opened: a prompt must not hold connections open. */
async function createUser(config: Config, values: Values): Promise<number> {
  const username = required(values.username, '--username');
  const password = await readPassword({ flag: values.password, fromStdin: values['password-stdin'] === true, confirm: true });
  await withRuntime(config, 'compare', async (runtime) => {
    const input = { username, password, name: values.name, email: values.email };
    const created = await createAccount(runtime, input, values.admin === true ? 'admin' : 'user', 'cli');
    process.stdout.write(`${created.uid}\n`);
  });
  return 0;
}

/** The API refuses to leave no active admin; the operator may (a thief may hold the only one). */
function warnNoAdminLeft(): void {
  process.stderr.write('latchkey: warning: no active admin is left; create one with `latchkey user create --admin`\n');
}

/** Runs the CLI with the process arguments and exits with its status. */
export function runCli(): void {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exit(code);
    },
    (error: unknown) => {
      // One line, whatever failed: the refusals (config, usage, deployment, unreachable store) say
      // what to do in their message; anything else is shown by its message alone.
      process.stderr.write(`latchkey: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(error instanceof UnknownInputError ? 2 : 1);
    },
  );
}

if (import.meta.main) runCli();
