/**
 * `latchkey <command>`: serve, migrate, and the operator's commands on users and sessions.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from './config.ts';
import type { Runtime } from './runtime.ts';
import { createLogger } from './logger.ts';
import { createAccount } from './flows/password/password-flow.ts';
import { setAccountStatus, setRole } from './core/accounts.ts';
import { LatchkeyError } from './core/errors.ts';
// The server, the stores and their drivers are imported by the commands that use them, so that
// --help and a bad config answer in a tenth of the time it takes to load Fastify and the drivers.

const USAGE = `latchkey — identity and session server for multi-device apps

Usage:
  latchkey serve [--config FILE]                         run the HTTP server
  latchkey migrate [--config FILE]                       create or update the account database
  latchkey user create --username U --password P [--admin] [--name N] [--email E]
  latchkey user ban UID                                  ban a user and end all their sessions
  latchkey user unban UID
  latchkey user role UID admin|user                      promote or demote (effective at the next request)
  latchkey sessions revoke-all UID                       end every session of a user
  latchkey audit tail [--uid UID] [--limit N]            the latest audit events, oldest first
  latchkey import --from mysql://user:pass@host:port/db [--dry-run]
                                                         copy users from an octo-server database
  latchkey dev-idp [--port 9090] [--latchkey URL]       a local OpenID provider to try SSO with
  latchkey <command> --help                              help for one command

Configuration: defaults < JSON file (--config FILE or LATCHKEY_CONFIG) < environment
(LATCHKEY_HOST, LATCHKEY_PORT, LATCHKEY_DATA_DIR, LATCHKEY_STORE, LATCHKEY_STORE_PREFIX,
LATCHKEY_STORE_TLS_CA, LATCHKEY_STORE_MIN_REPLICAS, LATCHKEY_DB, LATCHKEY_TRUST_PROXY,
LATCHKEY_SESSION_TTL, LATCHKEY_SESSION_IDLE_TIMEOUT, LATCHKEY_LOG_LEVEL, LATCHKEY_SERVICE_KEYS,
LATCHKEY_PUBLIC_URL, LATCHKEY_METRICS_HOST, LATCHKEY_METRICS_PORT, LATCHKEY_METRICS_BEARER_KEY). See README.md.
`;

const HELP: Record<string, string> = {
  serve: 'latchkey serve [--config FILE]\n  Runs the HTTP server until SIGTERM/SIGINT, then drains in-flight requests and exits.\n',
  migrate: 'latchkey migrate [--config FILE]\n  Applies pending account-database migrations (serve also does this at start).\n',
  user:
    'latchkey user create --username U --password P [--admin] [--name N] [--email E] [--config FILE]\n' +
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
    'latchkey import --from mysql://user:pass@host:port/db [--dry-run] [--config FILE]\n' +
    '  Copies the users of an octo-server database (table `user`) into the account database. Keeps\n' +
    '  uids and bcrypt hashes (rehashed to argon2id at the next login), wraps legacy MD5 hashes in\n' +
    '  argon2id, imports disabled accounts banned, skips destroyed ones and uids already imported.\n' +
    '  Usernames, emails and phones another account holds are reported, not merged (exit status 2).\n',
};

const OPTIONS = {
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  username: { type: 'string' },
  password: { type: 'string' },
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

async function withRuntime(config: Config, work: (runtime: Runtime) => Promise<void>): Promise<void> {
  const { createRuntime } = await import('./runtime.ts');
  const runtime = await createRuntime(config, createLogger('warn'));
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

const CLI_CONTEXT = { ip: 'cli', userAgent: 'latchkey-cli' };

export async function main(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  const [command, sub, arg] = positionals;
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
      await (await import('./main.ts')).serve(config);
      return -1;
    case 'migrate':
      await (await import('./adapters/db/open.ts')).migrate(config.db);
      process.stdout.write('migrations applied\n');
      return 0;
    case 'user':
      return userCommand(config, sub, arg, values, positionals[3]);
    case 'audit':
      if (sub !== 'tail') throw new UsageError(HELP.audit ?? USAGE);
      return (await import('./ops/audit-command.ts')).auditTail(config, values.uid, values.limit);
    case 'import':
      return (await import('./ops/import-command.ts')).importCommand(config, required(values.from, '--from'), values['dry-run'] === true);
    case 'sessions':
      if (sub !== 'revoke-all') throw new UsageError(HELP.sessions);
      await withRuntime(config, async (runtime) => {
        const uid = required(arg, 'UID');
        const count = await runtime.sessions.revokeAll(uid, 'all');
        await runtime.audit.record({ type: 'revoke', uid, sid: null, result: 'ok', reason: `cli revoke-all; ${count}`, context: CLI_CONTEXT });
        process.stdout.write(`revoked ${count} session(s)\n`);
      });
      return 0;
    default:
      throw new UsageError(`unknown command ${command}\n\n${USAGE}`);
  }
}

async function userCommand(
  config: Config,
  sub: string | undefined,
  arg: string | undefined,
  values: { username?: string; password?: string; name?: string; email?: string; admin?: boolean },
  role?: string,
): Promise<number> {
  await withRuntime(config, async (runtime) => {
    if (sub === 'create') {
      const created = await createAccount(
        runtime,
        { username: required(values.username, '--username'), password: required(values.password, '--password'), name: values.name, email: values.email },
        values.admin === true ? 'admin' : 'user',
      );
      process.stdout.write(`${created.uid}\n`);
    } else if (sub === 'ban' || sub === 'unban') {
      const uid = required(arg, 'UID');
      const count = await setAccountStatus(runtime, uid, sub === 'ban' ? 'banned' : 'active', { allowLastAdmin: warnNoAdminLeft });
      await runtime.audit.record({ type: sub, uid, sid: null, result: 'ok', reason: `cli; ${count} session(s) revoked`, context: CLI_CONTEXT });
      process.stdout.write(sub === 'ban' ? `banned; revoked ${count} session(s)\n` : 'unbanned\n');
    } else if (sub === 'role') {
      const uid = required(arg, 'UID');
      if (role !== 'admin' && role !== 'user') throw new UsageError('the role is admin or user');
      await setRole(runtime, uid, role, { allowLastAdmin: warnNoAdminLeft });
      await runtime.audit.record({ type: 'role_change', uid, sid: null, result: 'ok', reason: `cli; ${role}`, context: CLI_CONTEXT });
      process.stdout.write(`${uid} is now ${role === 'admin' ? 'an admin' : 'a user'}\n`);
    } else {
      throw new UsageError(HELP.user ?? USAGE);
    }
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
      if (error instanceof ConfigError || error instanceof UsageError || error instanceof LatchkeyError) {
        process.stderr.write(`latchkey: ${error.message}\n`);
      } else if (error instanceof Error && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')) {
        process.stderr.write(`latchkey: ${error.message}\n${USAGE}`);
      } else {
        process.stderr.write(`latchkey: ${error instanceof Error ? error.message : String(error)}\n`);
      }
      process.exit(1);
    },
  );
}

if (import.meta.main) runCli();
