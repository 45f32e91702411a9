/**
 * The one schema of the config file (JSON Schema, checked with Ajv): every key at every depth, its
 * basic type, and the environment variable that may override it. `additionalProperties: false` on
 * every object: a misspelt key used to be ignored, so `code_login.register_by_mail: false` started
 * the server with email sign-up still on. The typed parsers (config.ts, config-*.ts) still give the
 * defaults and check the values; the README table and `--help` are checked against this schema.
 */
import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';

export interface SchemaNode {
  readonly type?: string | readonly string[];
  readonly description?: string;
  /** The LATCHKEY_* variable that overrides this key (an annotation; Ajv is told it is one). */
  readonly env?: string;
  readonly enum?: readonly unknown[];
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly additionalProperties?: false;
  readonly items?: SchemaNode;
  readonly anyOf?: readonly SchemaNode[];
}

// Numbers and switches may be given as text: environment variables are text, and the file always
// accepted "8080" and "true" alike. The parsers decide what the text must say.
const int: SchemaNode = { type: ['integer', 'string'] };
const bool: SchemaNode = { type: ['boolean', 'string'] };
const str: SchemaNode = { type: 'string' };
/** A list, or the same list comma-separated in one string (as an environment variable gives it). */
const strings: SchemaNode = { type: ['array', 'string'], items: { type: 'string' } };

function object(properties: Record<string, SchemaNode>): SchemaNode {
  return { type: 'object', properties, additionalProperties: false };
}

function withEnv(node: SchemaNode, env: string): SchemaNode {
  return { ...node, env };
}

const rateLimit = object({ max: int, window_seconds: int });
const devicePolicy: SchemaNode = { anyOf: [str, object({ mode: str, cap: int })] };
const tokenKey = object({ id: str, key: str });

const provider = object({
  id: str, name: str, enabled: bool, issuer: str, client_id: str, client_secret: str, redirect_uri: str, scopes: strings,
  link_by_verified_email: bool, link_by_verified_phone: bool, allow_new_users: bool, return_to_hosts: strings,
  post_logout_redirect_uri: str, allow_insecure_http: bool, timeout_seconds: int,
});

export const CONFIG_SCHEMA: SchemaNode = object({
  host: withEnv(str, 'LATCHKEY_HOST'),
  port: withEnv(int, 'LATCHKEY_PORT'),
  data_dir: withEnv(str, 'LATCHKEY_DATA_DIR'),
  store: withEnv(str, 'LATCHKEY_STORE'),
  store_prefix: withEnv(str, 'LATCHKEY_STORE_PREFIX'),
  store_tls_ca: withEnv(str, 'LATCHKEY_STORE_TLS_CA'),
  store_min_replicas: withEnv(int, 'LATCHKEY_STORE_MIN_REPLICAS'),
  db: withEnv(str, 'LATCHKEY_DB'),
  trust_proxy: withEnv({ type: ['boolean', 'string', 'array'], items: str }, 'LATCHKEY_TRUST_PROXY'),
  session_ttl: withEnv(int, 'LATCHKEY_SESSION_TTL'),
  session_idle_timeout: withEnv(int, 'LATCHKEY_SESSION_IDLE_TIMEOUT'),
  ended_retention_seconds: int,
  log_level: withEnv(str, 'LATCHKEY_LOG_LEVEL'),
  service_keys: withEnv(strings, 'LATCHKEY_SERVICE_KEYS'),
  public_url: withEnv(str, 'LATCHKEY_PUBLIC_URL'),
  device_policies: object({ app: devicePolicy, web: devicePolicy, pc: devicePolicy }),
  session_limits: { type: 'array', items: object({ flags: { type: 'array', items: int }, max: int, on_exceed: str }) },
  rate_limits: object({
    register: rateLimit, login: rateLimit, code_send_ip: rateLimit, code_send_to: rateLimit, code_send_to_all: rateLimit,
    qr_create: rateLimit, qr_exchange: rateLimit, ipv6_prefix: int,
  }),
  login_throttle: object({ per_account_ip: int, per_account: int, window_seconds: int, lock_seconds: int }),
  password: object({ memory_cost: int, time_cost: int, parallelism: int, concurrency: int, max_queue: int }),
  sender: object({
    type: str,
    smtp: object({ host: str, port: int, secure: bool, user: str, pass: str, from: str }),
    webhook: object({ url: str, timeout_ms: int, channels: strings }),
  }),
  code_login: object({ register_by_email: bool, register_by_sms: bool, send_answer_ms: int }),
  qr: object({
    request_ttl_seconds: int, poll_timeout_seconds: int, auth_code_ttl_seconds: int, max_polls_per_ip: int, max_polls_per_request: int,
  }),
  oidc: object({
    providers: { type: 'array', items: provider },
    token_key: { anyOf: [tokenKey, { type: 'array', items: tokenKey }] },
    sync_interval: int,
    discovery_refresh: int,
    rate_limit: rateLimit,
  }),
  im: object({
    type: str,
    wukongim: object({ api_url: str, manager_token: str, timeout_ms: int }),
    quit_retry: object({ interval_ms: int, max_interval_ms: int, max_attempts: int }),
  }),
  audit: object({ retention_days: int }),
  cors: object({ origins: strings, max_age_seconds: int }),
  mfa: object({ secret_key: { anyOf: [tokenKey, { type: 'array', items: tokenKey }] }, issuer: str, step_up_seconds: int, require_for_admins: bool }),
  passkeys: object({ rp_id: str, rp_name: str, origins: { type: 'array', items: str } }),
  compat: object({
    octo: bool,
    octo_qr: bool,
    octo_redis: object({
      url: str, token_prefix: str, sid_prefix: str, token_ttl_seconds: int, retry_interval_ms: int, retry_max_interval_ms: int,
    }),
  }),
  webhooks: { type: 'array', items: object({ url: str, secret: str, events: strings, max_age_seconds: int, timeout_ms: int, retry_max_ms: int }) },
  http: object({ request_timeout_seconds: int, idle_timeout_seconds: int, max_connections: int }),
  // null, false or "off": no metrics listener.
  metrics: object({
    host: withEnv(str, 'LATCHKEY_METRICS_HOST'),
    port: withEnv({ type: ['integer', 'string', 'null', 'boolean'] }, 'LATCHKEY_METRICS_PORT'),
    bearer_key: withEnv(str, 'LATCHKEY_METRICS_BEARER_KEY'),
  }),
  alerts: object({ new_device: bool }),
});

/** Every key path of the schema (`oidc.providers[].id`), with its env variable if it has one. */
export function schemaKeys(node: SchemaNode = CONFIG_SCHEMA, prefix = ''): { readonly path: string; readonly env: string | undefined }[] {
  const keys: { path: string; env: string | undefined }[] = [];
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    const path = prefix === '' ? name : `${prefix}.${name}`;
    keys.push({ path, env: child.env });
    for (const shape of [child, ...(child.anyOf ?? [])]) {
      keys.push(...schemaKeys(shape, path));
      if (shape.items !== undefined) keys.push(...schemaKeys(shape.items, `${path}[]`));
    }
  }
  return keys;
}

/** One problem the schema found, as config.ts reports it. */
export type SchemaProblem =
  | { readonly kind: 'unknown'; readonly path: string; readonly nearest: string | undefined; readonly known: readonly string[] }
  | { readonly kind: 'shape'; readonly path: string; readonly expected: string };

let compiled: ValidateFunction | undefined;

/** Loaded and compiled on first use: `--help` never pays for it (loading Ajv alone takes ~0.1 s). */
function validator(): ValidateFunction {
  if (compiled === undefined) {
    const { Ajv } = createRequire(import.meta.url)('ajv') as typeof import('ajv');
    const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true });
    ajv.addKeyword({ keyword: 'env', schemaType: 'string' });
    compiled = ajv.compile(CONFIG_SCHEMA);
  }
  return compiled;
}

/**
 * Unknown keys first (a typo is the likelier cause of whatever else looks wrong), then shape errors.
 * The value found is never part of a problem: it may be a secret under a misspelt name.
 */
export function schemaProblems(raw: unknown): { readonly unknown: SchemaProblem | undefined; readonly shape: SchemaProblem | undefined } {
  const validate = validator();
  if (validate(withoutUndefined(raw))) return { unknown: undefined, shape: undefined };
  const errors = validate.errors ?? [];
  const extra = errors.find((error) => error.keyword === 'additionalProperties');
  // A failed anyOf also reports why each of its shapes failed; the anyOf itself says what would do.
  const shape = errors.find((error) => error.keyword === 'anyOf') ?? errors.find((error) => error.keyword === 'type');
  return { unknown: extra === undefined ? undefined : unknownKey(raw, extra), shape: shape === undefined ? undefined : shapeProblem(raw, shape) };
}

/** A key set to undefined (a config built in code) is absent to the parsers, so to the schema too. */
function withoutUndefined(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(withoutUndefined);
  return Object.fromEntries(Object.entries(value).filter(([, item]) => item !== undefined).map(([key, item]) => [key, withoutUndefined(item)]));
}

function unknownKey(raw: unknown, error: ErrorObject): SchemaProblem {
  const parent = keyPath(raw, error.instancePath);
  const name = String((error.params as { additionalProperty?: unknown }).additionalProperty);
  const known = Object.keys((error.parentSchema as SchemaNode | undefined)?.properties ?? {});
  const nearest = nearestKey(name, known);
  const join = (key: string): string => (parent === '' ? key : `${parent}.${key}`);
  return { kind: 'unknown', path: join(printable(name)), nearest: nearest === undefined ? undefined : join(nearest), known };
}

function shapeProblem(raw: unknown, error: ErrorObject): SchemaProblem {
  const types = error.keyword === 'type'
    ? String((error.params as { type?: unknown }).type).split(',')
    : (error.schema as readonly SchemaNode[]).flatMap((shape) => (shape.type === undefined ? [] : [shape.type].flat()));
  const words: Record<string, string> = {
    object: 'an object', array: 'a list', string: 'a string', integer: 'an integer', boolean: 'true or false', null: 'null',
  };
  return { kind: 'shape', path: keyPath(raw, error.instancePath), expected: types.map((type) => words[type] ?? type).join(' or ') };
}

/** `/oidc/providers/0/id` as `oidc.providers[0].id`: the form every other config error uses. */
function keyPath(raw: unknown, pointer: string): string {
  let path = '';
  let at: unknown = raw;
  for (const escaped of pointer.split('/').slice(1)) {
    const segment = escaped.replaceAll('~1', '/').replaceAll('~0', '~');
    path = Array.isArray(at) ? `${path}[${segment}]` : path === '' ? printable(segment) : `${path}.${printable(segment)}`;
    at = at !== null && typeof at === 'object' ? (at as Record<string, unknown>)[segment] : undefined;
  }
  return path;
}

/**
 * A key is printed as typed when it looks like a config key (words, separators, perhaps a small
 * number). Anything else may be a secret pasted where a key belongs, or may break the one line.
 */
function printable(key: string): string {
  return /^[A-Za-z_-]{1,40}\d{0,2}$/.test(key) ? key : `(a key of ${key.length} characters, not shown)`;
}

/**
 * The known key a typo most likely meant: the closest by Damerau-Levenshtein distance once case and
 * `-`/`_` are ignored (so `logLevel` finds `log_level`), if close enough to be a slip rather than a
 * different word; or the key the typo is the start of (`poll_timeout` for `poll_timeout_seconds`).
 */
export function nearestKey(typed: string, known: readonly string[]): string | undefined {
  const plain = (key: string): string => key.toLowerCase().replace(/[-_]/g, '');
  const target = plain(typed);
  let best: { key: string; distance: number } | undefined;
  for (const key of known) {
    const distance = damerau(target, plain(key));
    if (best === undefined || distance < best.distance) best = { key, distance };
  }
  if (best !== undefined && best.distance <= Math.max(1, Math.floor(target.length / 4))) return best.key;
  return typed.length >= 4 ? known.find((key) => key.startsWith(`${typed}_`)) : undefined;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps. */
function damerau(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number): number => rows[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i <= a.length; i += 1) {
    const row = rows[i] ?? [];
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) distance = Math.min(distance, at(i - 2, j - 2) + 1);
      row[j] = distance;
    }
  }
  return at(a.length, b.length);
}
