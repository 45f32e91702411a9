/**
 * The one typed configuration: defaults < JSON file (`--config FILE` or LATCHKEY_CONFIG) < env.
 * A bad value stops start-up with one line naming the key and what is allowed; a key the schema
 * (schema.ts) does not know, at any depth, with one line naming the nearest known key.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { defaultDevicePolicies, type DevicePolicies, type DevicePolicy, type SessionLimit } from '../core/sessions/policy.ts';
import { parseSessionLimits } from './session-limits.ts';
import { defaultHashQueue } from '../core/passwords.ts';
import { defaultHashConcurrency } from '../adapters/passwords/argon2-hasher.ts';
import { parseOidcConfig, type OidcConfig } from './oidc.ts';
import { parseImConfig, type ImConfig } from './im.ts';
import { parseAuditConfig, parseServiceKeys, type AuditConfig } from './admin.ts';
import { parseHttpConfig, parsePublicUrl, type HttpConfig } from './http.ts';
import { parseCorsConfig, type CorsConfig } from './cors.ts';
import { parseMfaConfig, type MfaConfig } from './mfa.ts';
import { parsePasskeysConfig, type PasskeysConfig } from './passkeys.ts';
import { parseCompatConfig, type CompatConfig } from './compat.ts';
import { parseWebhooksConfig, type WebhookTarget } from './webhooks.ts';
import { metricsFromEnv, parseMetricsConfig, type MetricsConfig } from './metrics.ts';
import { schemaKeys, schemaProblems, type SchemaProblem } from './schema.ts';
import { ConfigError, HIDDEN_VALUE } from './errors.ts';
import { bool as boolValue, int } from './values.ts';
import { parseAlertsConfig, type AlertsConfig } from './alerts.ts';

export { ConfigError, HIDDEN_VALUE } from './errors.ts';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface RateLimit {
  /** Requests allowed per window. */
  readonly max: number;
  readonly windowSeconds: number;
}

export interface SmtpConfig {
  readonly host: string;
  readonly port: number;
  /** Implicit TLS (port 465); otherwise STARTTLS when the server offers it. */
  readonly secure: boolean;
  readonly user: string | undefined;
  readonly pass: string | undefined;
  readonly from: string;
}

export interface WebhookConfig {
  readonly url: string;
  readonly timeoutMs: number;
  readonly channels: readonly ('sms' | 'email')[];
}

/** One sender delivers every channel it can: console and webhook both, SMTP email only. */
export type SenderConfig =
  | { readonly type: 'console' }
  | { readonly type: 'smtp'; readonly smtp: SmtpConfig }
  | { readonly type: 'webhook'; readonly webhook: WebhookConfig };

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  /**
   * `sqlite:<path>`, `redis://…`, `redis-cluster://host:port,host:port` or
   * `redis-sentinel://host:port,…/<master>`; `rediss…` in place of `redis…` for TLS.
   */
  readonly store: string;
  /** PEM of the CA trusted for a TLS store instead of Node's CA store (read from `store_tls_ca`). */
  readonly storeTlsCa: string | undefined;
  /** Prefix of every Redis key (several deployments sharing one Redis); empty by default. */
  readonly storePrefix: string;
  /** Replicas that must have a session's end (a GETDEL) before it is reported done. */
  readonly storeMinReplicas: number;
  /** `sqlite:<path>` or `postgres://…`. */
  readonly db: string;
  /** Proxies whose X-Forwarded-For is believed: false, true, or a list of addresses/CIDRs. */
  readonly trustProxy: boolean | readonly string[];
  readonly sessionTtlSeconds: number;
  /** A session unused this long ends; 0: no inactivity timeout (docs/security.md, ASVS 7.3.1). */
  readonly sessionIdleTimeoutSeconds: number;
  /** How long a token whose session ended still learns why (401 details.reason); 0: never. */
  readonly endedRetentionSeconds: number;
  readonly logLevel: LogLevel;
  readonly devicePolicies: DevicePolicies;
  /** Limits on the live sessions of groups of device flags, on top of devicePolicies (session-limits.ts). */
  readonly sessionLimits: readonly SessionLimit[];
  readonly rateLimits: {
    readonly register: RateLimit;
    readonly login: RateLimit;
    /** POST /v1/user/code/send, per client IP. */
    readonly codeSendIp: RateLimit;
    /** POST /v1/user/code/send, per destination and requester (on top of the 60 s resend cooldown). */
    readonly codeSendTo: RateLimit;
    /** POST /v1/user/code/send, per destination from all requesters together: the SMS cost ceiling. */
    readonly codeSendToAll: RateLimit;
    /** GET /v1/user/loginuuid, per client IP. */
    readonly qrCreate: RateLimit;
    /** POST /v1/user/login_authcode, per client IP. */
    readonly qrExchange: RateLimit;
    /** Per-IP limits and the login throttle count an IPv6 client under this many leading bits. */
    readonly ipv6Prefix: number;
  };
  readonly loginThrottle: {
    /** Failures per (account, IP) before that pair is locked for `lockSeconds`. */
    readonly perAccountIp: number;
    /** Failures per account from all addresses before growing delays apply. */
    readonly perAccount: number;
    readonly windowSeconds: number;
    readonly lockSeconds: number;
  };
  readonly password: {
    readonly memoryCost: number;
    readonly timeCost: number;
    readonly parallelism: number;
    readonly concurrency: number;
    /** Password checks that may wait for a hashing thread; past them a check answers 503 at once. */
    readonly maxQueue: number;
  };
  readonly sender: SenderConfig;
  /** Whether a code login for an unknown email / phone creates the account. */
  readonly codeLogin: {
    readonly registerByEmail: boolean;
    readonly registerBySms: boolean;
    /** code/send answers this long after the request, whoever the address belongs to (0: when delivered). */
    readonly sendAnswerMs: number;
  };
  readonly qr: {
    /** An unscanned request (and a scanned, unanswered one) lapses after this. */
    readonly requestTtlSeconds: number;
    /** GET /v1/user/loginstatus answers after this at the latest. */
    readonly pollTimeoutSeconds: number;
    /** An approved request's auth code can be exchanged for this long. */
    readonly authCodeTtlSeconds: number;
    /** Long-polls one client address may have held at once on one node; past it 429. */
    readonly maxPollsPerIp: number;
    /** Long-polls one login request may have held at once on one node; past it 429. */
    readonly maxPollsPerRequest: number;
  };
  /** OpenID Connect providers (oidc.ts). */
  readonly oidc: OidcConfig;
  /** The IM server kept in step with sessions (im.ts, docs/design.md §3.4). */
  readonly im: ImConfig;
  /** Keys other backends present at POST /v1/auth/verify (admin.ts); empty: the route is off. */
  readonly serviceKeys: readonly string[];
  readonly audit: AuditConfig;
  /** Web clients on other origins allowed to call the API (cors.ts). */
  readonly cors: CorsConfig;
  /** Second factors: the key TOTP secrets are sealed under, the issuer apps show (mfa.ts). */
  readonly mfa: MfaConfig;
  /** Passkeys (WebAuthn): the relying party id and name, the page origins (passkeys.ts). */
  readonly passkeys: PasskeysConfig;
  /** octo-server's shapes on octo's routes, and the token mirror into its Redis (compat.ts). */
  readonly compat: CompatConfig;
  /** Timeouts and a connection cap against slow clients (http.ts). */
  readonly http: HttpConfig;
  /** The origin browsers use (`https://…` makes cookies Secure and `__Host-`), or undefined: judged per request. */
  readonly publicUrl: string | undefined;
  /** Where GET /metrics is served (metrics.ts): its own loopback listener, and/or behind a bearer key. */
  readonly metrics: MetricsConfig;
  /** Security notices mailed to the account (alerts.ts). */
  readonly alerts: AlertsConfig;
  /** Where events are POSTed (webhooks.ts, docs/design.md §3.6); empty: no outbox rows, no worker. */
  readonly webhooks: readonly WebhookTarget[];
}

/**
 * What the schema found, as one line: a key nobody knows is named with the nearest known key (its
 * value is never shown: a misspelt `client_secret` holds a secret all the same).
 */
function schemaError(problem: SchemaProblem): ConfigError {
  if (problem.kind === 'shape') return new ConfigError(problem.path, problem.expected, HIDDEN_VALUE);
  const hint = problem.nearest === undefined ? `expected one of ${problem.known.join(', ')}` : `did you mean ${problem.nearest}?`;
  return new ConfigError(problem.path, '', HIDDEN_VALUE, `unknown key; ${hint}`);
}

type Env = Readonly<Record<string, string | undefined>>;
type Json = Record<string, unknown>;

/** Top-level config file keys and their env names, from the schema (nested ones: metrics.ts). */
const ENV_KEYS: Readonly<Record<string, string>> = Object.fromEntries(
  schemaKeys().flatMap(({ path, env }) => (env === undefined || path.includes('.') ? [] : [[path, env]])),
);

export function loadConfig(options: { env?: Env; file?: string | undefined } = {}): Config {
  const env = options.env ?? process.env;
  // An empty variable is unset, as for every other LATCHKEY_* variable.
  const file = options.file ?? (env.LATCHKEY_CONFIG === '' ? undefined : env.LATCHKEY_CONFIG);
  const fromFile = file === undefined ? {} : readConfigFile(file);
  const raw: Json = { ...fromFile };
  for (const [key, envName] of Object.entries(ENV_KEYS)) {
    const value = env[envName];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  if (raw.metrics !== undefined || Object.keys(env).some((name) => name.startsWith('LATCHKEY_METRICS_'))) raw.metrics = metricsFromEnv(raw.metrics, env);
  return parseConfig(raw);
}

/** A file a setting names, read whole; unreadable is a ConfigError naming the setting and the file. */
function readFileText(key: string, path: string, expected: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(key, expected, `${path} (${(error as Error).message})`);
  }
}

function readConfigFile(path: string): Json {
  const text = readFileText('config', path, 'a readable JSON file');
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Json;
  } catch {
    // fall through to the one-line error
  }
  throw new ConfigError('config', 'a JSON object', path);
}

export function parseConfig(raw: Json): Config {
  // A typo is reported before anything it makes look missing or wrong.
  const problems = schemaProblems(raw);
  if (problems.unknown !== undefined) throw schemaError(problems.unknown);
  const config = parseValues(raw);
  // The parsers gave their own messages for bad values; what is left is a wrong shape where no parser
  // looks (smtp settings beside a console sender), which would otherwise sit unnoticed until used.
  if (problems.shape !== undefined) throw schemaError(problems.shape);
  return config;
}

/** The typed parsers alone, without the schema: exported for the test that both know the same keys. */
export function parseValues(raw: Json): Config {
  const dataDir = nonEmptyString(raw, 'data_dir', './data');
  const defaultSqlite = `sqlite:${join(dataDir, 'latchkey.db')}`;
  const store = storeUrl(raw, 'store', defaultSqlite, STORE_SCHEMES);
  const oidc = parseOidcConfig(raw.oidc ?? {});
  return {
    host: nonEmptyString(raw, 'host', '127.0.0.1'),
    port: integerIn(raw, 'port', 8080, 0, 65535),
    dataDir,
    store,
    storeTlsCa: storeTlsCa(raw.store_tls_ca, store),
    storePrefix: keyPrefix(raw.store_prefix),
    storeMinReplicas: storeMinReplicas(raw, store),
    db: storeUrl(raw, 'db', defaultSqlite, ['sqlite:', 'postgres://', 'postgresql://']),
    trustProxy: trustProxy(raw.trust_proxy),
    sessionTtlSeconds: integerIn(raw, 'session_ttl', 30 * 24 * 3600, 60, 400 * 24 * 3600),
    sessionIdleTimeoutSeconds: idleTimeout(raw),
    endedRetentionSeconds: integerIn(raw, 'ended_retention_seconds', 7 * 86_400, 0, 90 * 86_400),
    logLevel: oneOf(raw, 'log_level', 'info', LOG_LEVELS),
    devicePolicies: devicePolicies(raw.device_policies),
    sessionLimits: parseSessionLimits(raw.session_limits),
    rateLimits: {
      register: rateLimit(raw, 'register', { max: 10, windowSeconds: 3600 }),
      login: rateLimit(raw, 'login', { max: 60, windowSeconds: 60 }),
      codeSendIp: rateLimit(raw, 'code_send_ip', { max: 20, windowSeconds: 3600 }),
      codeSendTo: rateLimit(raw, 'code_send_to', { max: 5, windowSeconds: 3600 }),
      codeSendToAll: rateLimit(raw, 'code_send_to_all', { max: 10, windowSeconds: 3600 }),
      qrCreate: rateLimit(raw, 'qr_create', { max: 30, windowSeconds: 60 }),
      qrExchange: rateLimit(raw, 'qr_exchange', { max: 30, windowSeconds: 60 }),
      ipv6Prefix: integerIn(section(raw, 'rate_limits'), 'rate_limits.ipv6_prefix', 64, 1, 128),
    },
    loginThrottle: {
      perAccountIp: integerIn(section(raw, 'login_throttle'), 'login_throttle.per_account_ip', 5, 1, 1000),
      perAccount: integerIn(section(raw, 'login_throttle'), 'login_throttle.per_account', 50, 1, 100_000),
      windowSeconds: integerIn(section(raw, 'login_throttle'), 'login_throttle.window_seconds', 900, 1, 86_400),
      lockSeconds: integerIn(section(raw, 'login_throttle'), 'login_throttle.lock_seconds', 900, 1, 86_400),
    },
    password: passwordConfig(section(raw, 'password')),
    sender: senderConfig(section(raw, 'sender')),
    codeLogin: {
      registerByEmail: bool(section(raw, 'code_login'), 'code_login.register_by_email', true),
      // Carriers recycle phone numbers: by default a number alone does not create an account.
      registerBySms: bool(section(raw, 'code_login'), 'code_login.register_by_sms', false),
      sendAnswerMs: integerIn(section(raw, 'code_login'), 'code_login.send_answer_ms', 1000, 0, 10_000),
    },
    qr: {
      requestTtlSeconds: integerIn(section(raw, 'qr'), 'qr.request_ttl_seconds', 120, 1, 3600),
      pollTimeoutSeconds: integerIn(section(raw, 'qr'), 'qr.poll_timeout_seconds', 25, 1, 120),
      authCodeTtlSeconds: integerIn(section(raw, 'qr'), 'qr.auth_code_ttl_seconds', 60, 1, 600),
      maxPollsPerIp: integerIn(section(raw, 'qr'), 'qr.max_polls_per_ip', 20, 1, 100_000),
      maxPollsPerRequest: integerIn(section(raw, 'qr'), 'qr.max_polls_per_request', 3, 1, 100),
    },
    oidc,
    mfa: parseMfaConfig(raw.mfa, oidc.tokenKeys),
    im: parseImConfig(raw.im),
    serviceKeys: parseServiceKeys(raw.service_keys),
    audit: parseAuditConfig(raw.audit),
    cors: parseCorsConfig(raw.cors),
    compat: parseCompatConfig(raw.compat),
    http: parseHttpConfig(raw.http, integerIn(section(raw, 'qr'), 'qr.poll_timeout_seconds', 25, 1, 120)),
    publicUrl: parsePublicUrl(raw.public_url),
    passkeys: parsePasskeysConfig(raw.passkeys, parsePublicUrl(raw.public_url)),
    metrics: parseMetricsConfig(raw.metrics),
    alerts: parseAlertsConfig(raw.alerts),
    webhooks: parseWebhooksConfig(raw.webhooks),
  };
}

/** Reads `a.b` keys from a nested object; the last path segment is the key looked up. */
function section(raw: Json, key: string): Json {
  const value = raw[lastSegment(key)];
  if (value === undefined) return {};
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as Json;
  throw new ConfigError(key, 'an object', HIDDEN_VALUE);
}

/** `a.b.c` → `c`: the key looked up in the object the path leads to. */
function lastSegment(key: string): string {
  return key.slice(key.lastIndexOf('.') + 1);
}

function nonEmptyString(raw: Json, key: string, fallback: string): string {
  const value = raw[lastSegment(key)] ?? fallback;
  if (typeof value !== 'string' || value === '') throw new ConfigError(key, 'a non-empty string', value);
  return value;
}

function integerIn(raw: Json, key: string, fallback: number, min: number, max: number): number {
  return int(raw[lastSegment(key)] ?? fallback, key, fallback, min, max);
}

/** 0 (off) or at least 5 minutes: last-seen stamps are written once a minute, so less would end busy sessions. */
function idleTimeout(raw: Json): number {
  const seconds = integerIn(raw, 'session_idle_timeout', 0, 0, 400 * 24 * 3600);
  if (seconds !== 0 && seconds < 300) throw new ConfigError('session_idle_timeout', '0 (off) or from 300 to 34560000', seconds);
  return seconds;
}

function oneOf<T extends string>(raw: Json, key: string, fallback: T, allowed: readonly T[]): T {
  const value = raw[lastSegment(key)] ?? fallback;
  if (!allowed.includes(value as T)) throw new ConfigError(key, `one of ${allowed.join(', ')}`, value);
  return value as T;
}

function storeUrl(raw: Json, key: string, fallback: string, schemes: readonly string[]): string {
  const value = nonEmptyString(raw, key, fallback);
  if (!schemes.some((scheme) => value.startsWith(scheme))) {
    throw new ConfigError(key, `a URL starting with ${schemes.join(' or ')}`, value);
  }
  if (value.startsWith('sqlite:') && value.length === 'sqlite:'.length) {
    throw new ConfigError(key, 'sqlite:<path>', value);
  }
  return value;
}

const STORE_SCHEMES = [
  'sqlite:', 'redis://', 'rediss://', 'redis-cluster://', 'rediss-cluster://', 'redis-sentinel://', 'rediss-sentinel://',
];

/** The CA file is read here, so a wrong path or a file without a certificate stops start-up. */
function storeMinReplicas(raw: Json, store: string): number {
  const replicas = integerIn(raw, 'store_min_replicas', 0, 0, 5);
  if (replicas > 0 && store.startsWith('sqlite:')) {
    throw new ConfigError('store_min_replicas', '0 unless store is a Redis URL (SQLite has no replicas)', replicas);
  }
  return replicas;
}

function storeTlsCa(value: unknown, store: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw new ConfigError('store_tls_ca', 'the path of a PEM CA certificate file', value);
  if (!store.startsWith('rediss')) {
    throw new ConfigError('store_tls_ca', 'no CA file unless store is a TLS URL (rediss://, rediss-cluster://, rediss-sentinel://)', value);
  }
  const pem = readFileText('store_tls_ca', value, 'a readable PEM CA certificate file');
  try {
    // Parses the first certificate only; enough to catch a key, a DER file or an empty file.
    new X509Certificate(pem);
  } catch {
    throw new ConfigError('store_tls_ca', 'a file holding PEM certificates (-----BEGIN CERTIFICATE-----)', value);
  }
  return pem;
}

function keyPrefix(value: unknown): string {
  if (value === undefined) return '';
  // No braces: a prefix must not change which Redis Cluster slot a `{uid}`-tagged key lands in.
  if (typeof value === 'string' && /^[A-Za-z0-9:_.-]{0,64}$/.test(value)) return value;
  throw new ConfigError('store_prefix', 'up to 64 of A-Z a-z 0-9 : _ . -', value);
}

function trustProxy(value: unknown): boolean | readonly string[] {
  if (value === undefined || value === false || value === 'false' || value === '') return false;
  if (value === true || value === 'true') return true;
  const list = typeof value === 'string' ? value.split(',').map((v) => v.trim()) : value;
  if (Array.isArray(list) && list.length > 0 && list.every(isProxyAddress)) return list as string[];
  throw new ConfigError('trust_proxy', 'true, false, or a comma-separated list of proxy addresses/CIDRs', value);
}

/** Named ranges the HTTP layer (proxy-addr) understands; anything else must be an IP or IP/bits. */
const PROXY_RANGE_NAMES: readonly unknown[] = ['loopback', 'linklocal', 'uniquelocal'];

// Checked here because the HTTP layer would otherwise crash at start with a message naming no key.
function isProxyAddress(entry: unknown): boolean {
  if (typeof entry !== 'string') return false;
  if (PROXY_RANGE_NAMES.includes(entry)) return true;
  const [address = '', bits, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
}

function passwordConfig(raw: Json): Config['password'] {
  const concurrency = integerIn(raw, 'password.concurrency', defaultHashConcurrency(), 1, 64);
  return {
    memoryCost: integerIn(raw, 'password.memory_cost', 19_456, 1024, 1_048_576),
    timeCost: integerIn(raw, 'password.time_cost', 2, 1, 20),
    parallelism: integerIn(raw, 'password.parallelism', 1, 1, 16),
    concurrency,
    maxQueue: integerIn(raw, 'password.max_queue', defaultHashQueue(concurrency), 1, 1_000_000),
  };
}

function rateLimit(raw: Json, name: string, fallback: RateLimit): RateLimit {
  const limits = section(raw, 'rate_limits');
  const own = section(limits, `rate_limits.${name}`);
  return {
    max: integerIn(own, `rate_limits.${name}.max`, fallback.max, 1, 1_000_000),
    windowSeconds: integerIn(own, `rate_limits.${name}.window_seconds`, fallback.windowSeconds, 1, 86_400),
  };
}

function devicePolicies(value: unknown): DevicePolicies {
  if (value === undefined) return defaultDevicePolicies;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError('device_policies', 'an object keyed by app, web, pc', value);
  }
  const given = value as Json;
  const pick = (name: string, fallback: DevicePolicy): DevicePolicy => {
    const policy = given[name];
    if (policy === undefined) return fallback;
    if (policy === 'exclusive') return { mode: 'exclusive' };
    if (typeof policy === 'object' && policy !== null && (policy as Json).mode === 'multi') {
      return { mode: 'multi', cap: integerIn(policy as Json, `device_policies.${name}.cap`, 10, 1, 1000) };
    }
    throw new ConfigError(`device_policies.${name}`, '"exclusive" or {"mode":"multi","cap":N}', policy);
  };
  return {
    0: pick('app', defaultDevicePolicies[0]),
    1: pick('web', defaultDevicePolicies[1]),
    2: pick('pc', defaultDevicePolicies[2]),
  };
}

function bool(raw: Json, key: string, fallback: boolean): boolean {
  return boolValue(raw[lastSegment(key)] ?? fallback, key, fallback);
}

function optionalStr(raw: Json, key: string): string | undefined {
  return raw[lastSegment(key)] === undefined ? undefined : nonEmptyString(raw, key, '');
}

function senderConfig(sender: Json): SenderConfig {
  const type = oneOf(sender, 'sender.type', 'console', ['console', 'smtp', 'webhook'] as const);
  if (type === 'smtp') {
    const smtp = section(sender, 'sender.smtp');
    const port = integerIn(smtp, 'sender.smtp.port', 587, 1, 65535);
    const user = optionalStr(smtp, 'sender.smtp.user');
    const pass = optionalStr(smtp, 'sender.smtp.pass');
    if ((user === undefined) !== (pass === undefined)) throw new ConfigError('sender.smtp.pass', 'user and pass together or neither', '***');
    return {
      type,
      smtp: {
        host: nonEmptyString(smtp, 'sender.smtp.host', ''),
        port,
        secure: bool(smtp, 'sender.smtp.secure', port === 465),
        user,
        pass,
        from: nonEmptyString(smtp, 'sender.smtp.from', ''),
      },
    };
  }
  if (type === 'webhook') {
    const webhook = section(sender, 'sender.webhook');
    return {
      type,
      webhook: {
        url: storeUrl(webhook, 'sender.webhook.url', '', ['https://', 'http://']),
        timeoutMs: integerIn(webhook, 'sender.webhook.timeout_ms', 5000, 100, 60_000),
        channels: codeChannels(webhook.channels),
      },
    };
  }
  return { type };
}

function codeChannels(value: unknown): readonly ('sms' | 'email')[] {
  if (value === undefined) return ['sms', 'email'];
  const list = typeof value === 'string' ? value.split(',').map((v) => v.trim()) : value;
  if (Array.isArray(list) && list.length > 0 && list.every((v) => v === 'sms' || v === 'email')) {
    return [...new Set(list as ('sms' | 'email')[])];
  }
  throw new ConfigError('sender.webhook.channels', 'a non-empty list of "sms", "email"', value);
}
