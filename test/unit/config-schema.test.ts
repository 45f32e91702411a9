/**
 * The config file has one schema: a key it does not know, at any depth, stops start-up with one line
 * naming the key's full path and the nearest known key. A typo that was silently ignored kept a
 * setting the operator meant to change (`code_login.register_by_mail: false` left email sign-up on).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { describeRun, runCliWith, type CliRun } from '../support/cli-run.ts';
import { ConfigError, parseConfig, parseValues } from '../../src/config/config.ts';
import { CONFIG_SCHEMA, nearestKey, schemaKeys, schemaProblems } from '../../src/config/schema.ts';

const dir = mkdtempSync(join(tmpdir(), 'latchkey-config-schema-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = 'S3cr3tK3yMat3rialThatMustNeverBeLogged+AB=';
const TOKEN_KEY = { id: 'k1', key: Buffer.alloc(32, 7).toString('base64') };
const PROVIDER = {
  id: 'corp', issuer: 'https://idp.example.com', client_id: 'latchkey', client_secret: 'x',
  redirect_uri: 'https://login.example.com/v1/auth/oidc/corp/callback',
};

const LIMIT = { max: 5, window_seconds: 60 };
const COMMON = {
  host: '0.0.0.0', port: 9000, data_dir: '/srv/latchkey', store: 'rediss://cache.example.com:6380', store_prefix: 'lk:',
  store_min_replicas: 1, db: 'postgres://latchkey@db.example.com/latchkey', trust_proxy: ['10.0.0.0/8'],
  session_ttl: 3600, session_idle_timeout: 600, log_level: 'warn', service_keys: ['k'.repeat(32)],
  public_url: 'https://login.example.com',
  device_policies: { app: 'exclusive', web: { mode: 'multi', cap: 3 }, pc: { mode: 'multi', cap: 2 } },
  session_limits: [{ flags: [0, 1], max: 2, on_exceed: 'evict_oldest' }, { flags: [2], max: 3, on_exceed: 'reject_new' }],
  rate_limits: {
    register: LIMIT, login: LIMIT, code_send_ip: LIMIT, code_send_to: LIMIT, code_send_to_all: LIMIT, qr_create: LIMIT,
    qr_exchange: LIMIT, ipv6_prefix: 56,
  },
  login_throttle: { per_account_ip: 3, per_account: 30, window_seconds: 600, lock_seconds: 600 },
  password: { memory_cost: 19_456, time_cost: 2, parallelism: 1, concurrency: 2, max_queue: 10 },
  code_login: { register_by_email: false, register_by_sms: true, send_answer_ms: 500 },
  qr: { request_ttl_seconds: 60, poll_timeout_seconds: 20, auth_code_ttl_seconds: 30, max_polls_per_ip: 5, max_polls_per_request: 2 },
  oidc: {
    providers: [{
      ...PROVIDER, name: 'Corp', enabled: true, scopes: ['openid', 'email'], link_by_verified_email: true,
      link_by_verified_phone: false, allow_new_users: false, return_to_hosts: ['app.example.com'],
      post_logout_redirect_uri: 'https://login.example.com/', allow_insecure_http: false, timeout_seconds: 5,
    }],
    token_key: [TOKEN_KEY], sync_interval: 60, discovery_refresh: 600, rate_limit: LIMIT,
  },
  im: {
    type: 'wukongim', wukongim: { api_url: 'http://10.0.0.5:5001', manager_token: 'm', timeout_ms: 1000 },
    quit_retry: { interval_ms: 1000, max_interval_ms: 60_000, max_attempts: 3 },
  },
  audit: { retention_days: 30 },
  cors: { origins: ['https://im.example.test'], max_age_seconds: 300 },
  mfa: { secret_key: [TOKEN_KEY], issuer: 'Example', step_up_seconds: 600, require_for_admins: true },
  passkeys: { rp_id: 'example.com', rp_name: 'Example', origins: ['https://login.example.com', 'https://example.com'] },
  compat: {
    octo: true,
    octo_redis: {
      url: 'redis://10.0.0.6:6379/1', token_prefix: 'token:', sid_prefix: 'latchkey:octo-sid:', token_ttl_seconds: 86_400,
      retry_interval_ms: 1000, retry_max_interval_ms: 60_000,
    },
  },
  http: { request_timeout_seconds: 20, idle_timeout_seconds: 60, max_connections: 100 },
  metrics: { host: '127.0.0.1', port: 9465, bearer_key: 'b'.repeat(32) },
  alerts: { new_device: true },
  webhooks: [{
    url: 'https://hooks.example.com/latchkey', secret: `whsec_${Buffer.alloc(32, 1).toString('base64')}`, events: ['session.ended'],
    max_age_seconds: 3600, timeout_ms: 2000, retry_max_ms: 60_000,
  }],
};
/** Every key the config knows, over the configs that between them take every branch (smtp, webhook). */
const FULL_CONFIGS: readonly Record<string, unknown>[] = [
  { ...COMMON, sender: { type: 'smtp', smtp: { host: 'mail', port: 465, secure: true, user: 'u', pass: 'p', from: 'a@b.c' } } },
  {
    ...COMMON, device_policies: { app: { mode: 'multi', cap: 2 }, web: 'exclusive', pc: 'exclusive' },
    mfa: { secret_key: TOKEN_KEY },
    sender: { type: 'webhook', webhook: { url: 'https://sms.example.com/send', timeout_ms: 1000, channels: ['sms'] } },
  },
];

/** `latchkey serve`, stopped after 10 s if it started (the bug: a typo did not stop it). */
const serveBriefly = (file: string): Promise<CliRun> => runCliWith(['serve', '--config', file], { timeoutMs: 10_000 });

/** The exact one line a config with one unknown key must give. */
function refusedWith(raw: Record<string, unknown>, expected: string): void {
  assert.throws(() => parseConfig(raw), (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.equal(error.message, expected);
    return true;
  });
}

describe('config schema: an unknown key at any depth is refused', () => {
  it('code_login.register_by_mail (a typo of register_by_email) is refused, not ignored with email sign-up left on', () => {
    refusedWith(
      { code_login: { register_by_mail: false } },
      'config code_login.register_by_mail: unknown key; did you mean code_login.register_by_email?',
    );
  });

  it('latchkey serve with that typo exits 1 with that one line instead of starting', async () => {
    const file = join(dir, 'register-by-mail.json');
    writeFileSync(file, JSON.stringify({ port: 0, metrics: { port: 0 }, data_dir: dir, code_login: { register_by_mail: false } }));
    const run = await serveBriefly(file);
    assert.equal(run.code, 1, `it started instead: ${describeRun(run)}`);
    assert.equal(run.stderr, 'latchkey: config code_login.register_by_mail: unknown key; did you mean code_login.register_by_email?\n');
  });

  // One typo per nested section: each was silently ignored before (or named without a suggestion).
  const typos: readonly (readonly [section: string, raw: Record<string, unknown>, path: string, nearest: string])[] = [
    ['rate_limits', { rate_limits: { login: { windows_seconds: 10 } } }, 'rate_limits.login.windows_seconds', 'rate_limits.login.window_seconds'],
    ['rate_limits (a limit name)', { rate_limits: { qr_creat: { max: 1 } } }, 'rate_limits.qr_creat', 'rate_limits.qr_create'],
    ['login_throttle', { login_throttle: { per_acount_ip: 3 } }, 'login_throttle.per_acount_ip', 'login_throttle.per_account_ip'],
    ['qr', { qr: { request_ttl_secs: 30 } }, 'qr.request_ttl_secs', 'qr.request_ttl_seconds'],
    ['qr (a unit suffix left out)', { qr: { poll_timeout: 5 } }, 'qr.poll_timeout', 'qr.poll_timeout_seconds'],
    ['password', { password: { memory_costs: 65_536 } }, 'password.memory_costs', 'password.memory_cost'],
    ['device_policies', { device_policies: { ap: 'exclusive' } }, 'device_policies.ap', 'device_policies.app'],
    ['device_policies (inside a policy)', { device_policies: { web: { mode: 'multi', caps: 2 } } }, 'device_policies.web.caps', 'device_policies.web.cap'],
    ['sender', { sender: { typ: 'smtp' } }, 'sender.typ', 'sender.type'],
    ['sender.smtp', { sender: { type: 'smtp', smtp: { host: 'mail', from: 'a@b.c', prot: 25 } } }, 'sender.smtp.prot', 'sender.smtp.port'],
    ['sender.smtp (unused by a console sender)', { sender: { smtp: { hots: 'mail' } } }, 'sender.smtp.hots', 'sender.smtp.host'],
    ['sender.webhook', { sender: { type: 'webhook', webhook: { url: 'https://x.test', chanels: ['sms'] } } }, 'sender.webhook.chanels', 'sender.webhook.channels'],
    ['code_login (a unit suffix left out)', { code_login: { send_answer: 0 } }, 'code_login.send_answer', 'code_login.send_answer_ms'],
    ['http', { http: { max_conections: 10 } }, 'http.max_conections', 'http.max_connections'],
    ['metrics', { metrics: { bearerkey: 'x' } }, 'metrics.bearerkey', 'metrics.bearer_key'],
    ['im', { im: { typ: 'wukongim' } }, 'im.typ', 'im.type'],
    ['im.wukongim', { im: { type: 'wukongim', wukongim: { api_url: 'http://x', api_uri: 'x' } } }, 'im.wukongim.api_uri', 'im.wukongim.api_url'],
    ['im.quit_retry', { im: { quit_retry: { maxAttempts: 3 } } }, 'im.quit_retry.maxAttempts', 'im.quit_retry.max_attempts'],
    ['audit', { audit: { retention: 30 } }, 'audit.retention', 'audit.retention_days'],
    ['oidc', { oidc: { sync_intervall: 60 } }, 'oidc.sync_intervall', 'oidc.sync_interval'],
    ['oidc.providers[]', { oidc: { providers: [PROVIDER, { ...PROVIDER, id: 'b', redirect_url: 'x' }], token_key: TOKEN_KEY } }, 'oidc.providers[1].redirect_url', 'oidc.providers[1].redirect_uri'],
    ['oidc.token_key', { oidc: { token_key: { id: 'k', kye: 'x' } } }, 'oidc.token_key.kye', 'oidc.token_key.key'],
    ['oidc.token_key[]', { oidc: { token_key: [TOKEN_KEY, { id: 'k2', keys: 'x' }] } }, 'oidc.token_key[1].keys', 'oidc.token_key[1].key'],
    ['oidc.rate_limit', { oidc: { rate_limit: { window: 60 } } }, 'oidc.rate_limit.window', 'oidc.rate_limit.window_seconds'],
    ['webhooks[]', { webhooks: [{ url: 'https://h.example', secret: 'x', max_age: 60 }] }, 'webhooks[0].max_age', 'webhooks[0].max_age_seconds'],
    ['top level', { sesion_ttl: 60 }, 'sesion_ttl', 'session_ttl'],
    ['top level (camelCase)', { logLevel: 'warn' }, 'logLevel', 'log_level'],
  ];
  for (const [section, raw, path, nearest] of typos) {
    it(`${section}: ${path} names ${nearest}`, () => {
      refusedWith(raw, `config ${path}: unknown key; did you mean ${nearest}?`);
    });
  }

  it('a key like no known one lists what the object may hold instead of guessing', () => {
    refusedWith(
      { login_throttle: { banana: 1 } },
      'config login_throttle.banana: unknown key; expected one of per_account_ip, per_account, window_seconds, lock_seconds',
    );
  });

  it('a typo is reported before a missing required key, so the operator sees the cause', () => {
    refusedWith({ oidc: { providers: [{ ...PROVIDER, redirect_uri: undefined, redirect_url: 'x' }], token_key: TOKEN_KEY } },
      'config oidc.providers[0].redirect_url: unknown key; did you mean oidc.providers[0].redirect_uri?');
  });

  it('never prints the value of an unknown key (a misspelt secret is a secret), and keeps a hostile key on one line', () => {
    for (const raw of [
      { oidc: { providers: [{ ...PROVIDER, client_secert: SECRET }], token_key: TOKEN_KEY } },
      { metrics: { bearer_kee: SECRET } },
      { sender: { type: 'smtp', smtp: { host: 'h', from: 'f@x.test', user: 'u', passwd: SECRET } } },
      { [`x\n${SECRET}`]: 1 },
    ]) {
      assert.throws(() => parseConfig(raw), (error: unknown) => {
        assert.ok(error instanceof ConfigError, String(error));
        assert.ok(!error.message.includes(SECRET.slice(0, 20)), `the message leaks the secret: ${error.message}`);
        assert.doesNotMatch(error.message, /\n/);
        return true;
      });
    }
  });

  it('a wrong type in a section the parser skips (smtp settings beside a console sender) is still refused', () => {
    assert.throws(() => parseConfig({ sender: { smtp: { port: { n: 1 } } } }), (error: unknown) => {
      assert.ok(error instanceof ConfigError, String(error));
      assert.match(error.message, /^config sender\.smtp\.port: /);
      return true;
    });
  });

  it('a section that is not an object is named by its full path', () => {
    for (const [raw, path] of [
      [{ rate_limits: { login: 5 } }, 'rate_limits.login'],
      [{ sender: { type: 'smtp', smtp: 'mail.example.com' } }, 'sender.smtp'],
      [{ sender: { type: 'webhook', webhook: 'https://x.test' } }, 'sender.webhook'],
    ] as const) {
      assert.throws(() => parseConfig(raw), (error: unknown) => error instanceof ConfigError && error.message.startsWith(`config ${path}: `));
    }
  });

  it('a wrong shape where either of two is allowed names both (the schema alone; the parsers speak first)', () => {
    assert.deepEqual(schemaProblems({ oidc: { token_key: 'x' } }).shape, { kind: 'shape', path: 'oidc.token_key', expected: 'an object or a list' });
    assert.deepEqual(schemaProblems({ device_policies: { pc: 3 } }).shape, { kind: 'shape', path: 'device_policies.pc', expected: 'a string or an object' });
  });

  it('a key set to undefined in a config built in code counts as absent, as the parsers read it', () => {
    assert.equal(parseConfig({ store: undefined, sender: { type: 'smtp', smtp: { host: 'h', from: 'f@x.test', user: undefined } } }).sender.type, 'smtp');
  });

  it('a complete valid config (every section) is accepted', () => {
    for (const raw of FULL_CONFIGS) assert.equal(parseConfig(raw).codeLogin.registerByEmail, false);
  });
});

/** Key paths as the schema lists them: `oidc.providers[0].id` is `oidc.providers[].id`. */
function generic(path: string): string {
  return path.replace(/\[\d+\]/g, '[]');
}

/** A config that records every key path the parsers look up, present or not. */
function recording(raw: unknown, path: string, read: Set<string>): unknown {
  if (raw === null || typeof raw !== 'object') return raw;
  if (Array.isArray(raw)) return raw.map((item) => recording(item, `${path}[]`, read));
  return new Proxy(raw, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof key !== 'string') return value;
      const at = path === '' ? key : `${path}.${key}`;
      read.add(at);
      return recording(value, at, read);
    },
  });
}

describe('config schema: the parsers, the README and --help agree with it', () => {
  const schemaPaths = new Set(schemaKeys().map(({ path }) => path));
  /** Paths no other path continues: the keys that hold a value. */
  const leaves = [...schemaPaths].filter((path) => ![...schemaPaths].some((other) => other.startsWith(`${path}.`) || other.startsWith(`${path}[]`)));

  it('every key the parsers read is in the schema (else it would be refused), and every schema key is read (else ignored)', () => {
    const read = new Set<string>();
    for (const raw of FULL_CONFIGS) parseValues(recording(raw, '', read) as Record<string, unknown>);
    const readKeys = [...read].map(generic).map((path) => path.replace(/^oidc\.token_key\[\]/, 'oidc.token_key[]'));
    const unknownToSchema = readKeys.filter((path) => !schemaPaths.has(path));
    assert.deepEqual(unknownToSchema, [], 'keys the parsers read that the schema would refuse');
    const ignored = leaves.filter((path) => !readKeys.includes(path) && !readKeys.includes(path.replace(/^oidc\.token_key\./, 'oidc.token_key[].')));
    assert.deepEqual(ignored, [], 'schema keys no parser reads: they would be accepted and do nothing');
  });

  // The README's table: first cell the key(s), second the environment variable(s).
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1));
  const rows = table.split('\n').filter((line) => line.startsWith('| `')).map((line) => line.split(' | '));

  /** `rate_limits.login` / `.register` names rate_limits.register; `link_by_verified_email` / `_phone`, link_by_verified_phone. */
  function rowKeys(cell: string): string[] {
    const keys: string[] = [];
    for (const [token] of cell.matchAll(/`[^`]+`/g)) {
      const name = token.slice(1, -1);
      const previous = keys.at(-1) ?? '';
      if (name.startsWith('.')) keys.push(`${previous.slice(0, previous.lastIndexOf('.'))}${name}`);
      else if (name.startsWith('_')) keys.push(`${previous.slice(0, previous.lastIndexOf('_'))}${name}`);
      else keys.push(name);
    }
    return keys.map((key) => key.replace(/\[\]$/, ''));
  }
  const documented = new Map(rows.flatMap((cells) => rowKeys(cells[0]?.slice(2) ?? '').map((key) => [key, cells.join(' | ')] as const)));

  it('every README row names keys of the schema', () => {
    assert.ok(documented.size > 30, `the configuration table was not found (${documented.size} keys)`);
    assert.deepEqual([...documented.keys()].filter((key) => !schemaPaths.has(key)), []);
  });

  it('every schema key has a README row, its own or its section naming it', () => {
    const missing = leaves.filter((path) => {
      if (documented.has(path)) return false;
      const leaf = path.slice(Math.max(path.lastIndexOf('.'), path.lastIndexOf(']')) + 1);
      const sections = path.split('.').slice(0, -1).map((_, index, parts) => parts.slice(0, index + 1).join('.').replace(/\[\]$/, ''));
      return !sections.some((section) => new RegExp(`\\b${leaf}\\b`).test(documented.get(section) ?? ''));
    });
    assert.deepEqual(missing, []);
  });

  const envKeys = schemaKeys().filter((key): key is { path: string; env: string } => key.env !== undefined);

  it('the README gives each key its environment variable, and names no other', () => {
    const inReadme = rows.flatMap((cells) => {
      const keys = rowKeys(cells[0]?.slice(2) ?? '');
      const envs = [...(cells[1] ?? '').matchAll(/LATCHKEY_\w+/g)].map(([name]) => name);
      return envs.map((env, index) => `${keys[index] ?? '?'}=${env}`);
    });
    assert.deepEqual(inReadme.sort(), envKeys.map(({ path, env }) => `${path}=${env}`).sort());
  });

  it('latchkey --help lists every environment variable of the schema, and no other', async () => {
    const { stdout: help } = await runCliWith(['--help']);
    const listed = new Set([...help.matchAll(/LATCHKEY_\w+/g)].map(([name]) => name).filter((name) => name !== 'LATCHKEY_CONFIG'));
    assert.deepEqual([...listed].sort(), envKeys.map(({ env }) => env).sort());
  });

  it('the schema refuses unknown keys at every level: every object in it is closed', () => {
    const open: string[] = [];
    const walk = (node: typeof CONFIG_SCHEMA, path: string): void => {
      if (node.properties !== undefined && node.additionalProperties !== false) open.push(path);
      for (const [name, child] of Object.entries(node.properties ?? {})) walk(child, `${path}.${name}`);
      for (const shape of node.anyOf ?? []) walk(shape, path);
      if (node.items !== undefined) walk(node.items, `${path}[]`);
    };
    walk(CONFIG_SCHEMA, '');
    assert.deepEqual(open, []);
  });

  it('suggests only a near key', () => {
    assert.equal(nearestKey('register_by_mail', ['register_by_email', 'register_by_sms']), 'register_by_email');
    assert.equal(nearestKey('Register-By-Email', ['register_by_email']), 'register_by_email');
    assert.equal(nearestKey('mxa', ['max', 'window_seconds']), 'max');
    assert.equal(nearestKey('banana', ['max', 'window_seconds']), undefined);
    assert.equal(nearestKey('register_by_phone', ['register_by_email', 'register_by_sms']), undefined);
  });
});
