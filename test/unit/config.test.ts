import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { rootCertificates } from 'node:tls';
import { ConfigError, loadConfig, parseConfig, type Config } from '../../src/config/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'latchkey-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function configFile(content: unknown): string {
  files += 1;
  const path = join(dir, `config-${files}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

/**
 * One row per key: the file key, its environment variable, the default, a value given in the file,
 * a different value given in the environment (as text), and how each reads back from the Config.
 */
interface KeyCase {
  readonly fileKey: string;
  readonly envName: string;
  readonly read: (config: Config) => unknown;
  readonly defaultValue: unknown;
  readonly inFile: unknown;
  readonly fromFile: unknown;
  readonly inEnv: string;
  readonly fromEnv: unknown;
}

const keys: readonly KeyCase[] = [
  { fileKey: 'host', envName: 'LATCHKEY_HOST', read: (c) => c.host, defaultValue: '127.0.0.1', inFile: '0.0.0.0', fromFile: '0.0.0.0', inEnv: '::1', fromEnv: '::1' },
  { fileKey: 'port', envName: 'LATCHKEY_PORT', read: (c) => c.port, defaultValue: 8080, inFile: 9000, fromFile: 9000, inEnv: '9100', fromEnv: 9100 },
  { fileKey: 'data_dir', envName: 'LATCHKEY_DATA_DIR', read: (c) => c.dataDir, defaultValue: './data', inFile: '/srv/file', fromFile: '/srv/file', inEnv: '/srv/env', fromEnv: '/srv/env' },
  {
    fileKey: 'store', envName: 'LATCHKEY_STORE', read: (c) => c.store, defaultValue: 'sqlite:data/latchkey.db',
    inFile: 'redis://10.0.0.1:6379/2', fromFile: 'redis://10.0.0.1:6379/2',
    inEnv: 'redis-cluster://10.0.0.1:7000,10.0.0.2:7000', fromEnv: 'redis-cluster://10.0.0.1:7000,10.0.0.2:7000',
  },
  {
    fileKey: 'db', envName: 'LATCHKEY_DB', read: (c) => c.db, defaultValue: 'sqlite:data/latchkey.db',
    inFile: 'sqlite:/srv/accounts.db', fromFile: 'sqlite:/srv/accounts.db',
    inEnv: 'postgres://latchkey@10.0.0.3:5432/latchkey', fromEnv: 'postgres://latchkey@10.0.0.3:5432/latchkey',
  },
  {
    fileKey: 'trust_proxy', envName: 'LATCHKEY_TRUST_PROXY', read: (c) => c.trustProxy, defaultValue: false,
    inFile: ['10.0.0.1', '10.1.0.0/16'], fromFile: ['10.0.0.1', '10.1.0.0/16'], inEnv: '127.0.0.1, ::1', fromEnv: ['127.0.0.1', '::1'],
  },
  { fileKey: 'session_ttl', envName: 'LATCHKEY_SESSION_TTL', read: (c) => c.sessionTtlSeconds, defaultValue: 2_592_000, inFile: 3600, fromFile: 3600, inEnv: '7200', fromEnv: 7200 },
  { fileKey: 'log_level', envName: 'LATCHKEY_LOG_LEVEL', read: (c) => c.logLevel, defaultValue: 'info', inFile: 'warn', fromFile: 'warn', inEnv: 'debug', fromEnv: 'debug' },
];

/** Asserts `work` throws a ConfigError whose one-line message names `key` and what is allowed. */
function assertConfigError(work: () => unknown, key: string, allowed: RegExp): void {
  assert.throws(work, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.match(error.message, new RegExp(`^config ${key}: `));
    assert.match(error.message, allowed);
    assert.doesNotMatch(error.message, /\n/, 'one line');
    return true;
  });
}

describe('config precedence: defaults < file < environment', () => {
  for (const k of keys) {
    it(`${k.fileKey}: the default applies when neither file nor ${k.envName} gives one`, () => {
      assert.deepEqual(k.read(loadConfig({ env: {} })), k.defaultValue);
    });

    it(`${k.fileKey}: the file overrides the default`, () => {
      const file = configFile({ [k.fileKey]: k.inFile });
      assert.deepEqual(k.read(loadConfig({ env: {}, file })), k.fromFile);
    });

    it(`${k.fileKey}: ${k.envName} overrides the file`, () => {
      const file = configFile({ [k.fileKey]: k.inFile });
      assert.deepEqual(k.read(loadConfig({ env: { [k.envName]: k.inEnv }, file })), k.fromEnv);
    });

    it(`${k.fileKey}: an empty ${k.envName} counts as unset`, () => {
      const file = configFile({ [k.fileKey]: k.inFile });
      assert.deepEqual(k.read(loadConfig({ env: { [k.envName]: '' }, file })), k.fromFile);
    });
  }

  it('the config file is named by LATCHKEY_CONFIG when --config is not given', () => {
    const file = configFile({ port: 9001 });
    assert.equal(loadConfig({ env: { LATCHKEY_CONFIG: file } }).port, 9001);
  });

  it('an empty LATCHKEY_CONFIG counts as unset, like every other variable', () => {
    assert.equal(loadConfig({ env: { LATCHKEY_CONFIG: '' } }).port, 8080);
  });

  it('--config wins over LATCHKEY_CONFIG', () => {
    const fromFlag = configFile({ port: 9002 });
    const fromEnv = configFile({ port: 9003 });
    assert.equal(loadConfig({ env: { LATCHKEY_CONFIG: fromEnv }, file: fromFlag }).port, 9002);
  });

  it('the default store and db live under the data directory, wherever it was set', () => {
    const defaults = loadConfig({ env: {} });
    assert.equal(defaults.store, `sqlite:${join('./data', 'latchkey.db')}`);
    assert.equal(defaults.db, defaults.store);
    const file = configFile({ data_dir: '/srv/file' });
    const fromFile = loadConfig({ env: {}, file });
    assert.equal(fromFile.store, 'sqlite:/srv/file/latchkey.db');
    assert.equal(fromFile.db, 'sqlite:/srv/file/latchkey.db');
    const fromEnv = loadConfig({ env: { LATCHKEY_DATA_DIR: '/srv/env' }, file });
    assert.equal(fromEnv.store, 'sqlite:/srv/env/latchkey.db');
    assert.equal(fromEnv.db, 'sqlite:/srv/env/latchkey.db');
  });

  it('trust_proxy accepts true and false as text and as JSON booleans', () => {
    assert.equal(loadConfig({ env: { LATCHKEY_TRUST_PROXY: 'true' } }).trustProxy, true);
    assert.equal(loadConfig({ env: { LATCHKEY_TRUST_PROXY: 'false' }, file: configFile({ trust_proxy: true }) }).trustProxy, false);
    assert.equal(loadConfig({ env: {}, file: configFile({ trust_proxy: true }) }).trustProxy, true);
    assert.deepEqual(loadConfig({ env: { LATCHKEY_TRUST_PROXY: 'loopback,fd00::/8' } }).trustProxy, ['loopback', 'fd00::/8']);
  });

  it('keys without an environment variable come from the file and keep their defaults otherwise', () => {
    const defaults = loadConfig({ env: {} });
    // Hashes at once: every core but one, at least one.
    const cores = Math.max(1, availableParallelism() - 1);
    assert.deepEqual(defaults.password, { memoryCost: 19_456, timeCost: 2, parallelism: 1, concurrency: cores, maxQueue: 64 * cores });
    const file = configFile({ password: { memory_cost: 65_536, time_cost: 6, concurrency: 3, max_queue: 10 }, rate_limits: { login: { max: 5 } } });
    const config = loadConfig({ env: {}, file });
    assert.deepEqual(config.password, { memoryCost: 65_536, timeCost: 6, parallelism: 1, concurrency: 3, maxQueue: 10 });
    assert.deepEqual(config.rateLimits.login, { max: 5, windowSeconds: 60 });
    assert.deepEqual(config.rateLimits.register, defaults.rateLimits.register);
    assert.equal(defaults.rateLimits.ipv6Prefix, 64);
    assert.equal(loadConfig({ env: {}, file: configFile({ rate_limits: { ipv6_prefix: 56 } }) }).rateLimits.ipv6Prefix, 56);
  });
});

describe('config: a bad value is a ConfigError naming the key and what is allowed', () => {
  const badEnv: readonly (readonly [envName: string, value: string, key: string, allowed: RegExp])[] = [
    ['LATCHKEY_PORT', '70000', 'port', /"70000".*integer from 0 to 65535/],
    ['LATCHKEY_PORT', 'abc', 'port', /"abc".*integer from 0 to 65535/],
    ['LATCHKEY_PORT', '-1', 'port', /integer from 0 to 65535/],
    ['LATCHKEY_PORT', '80.5', 'port', /integer from 0 to 65535/],
    ['LATCHKEY_STORE', 'mysql://x', 'store', /"mysql:\/\/x".*sqlite:.*redis:\/\/.*redis-cluster:\/\//],
    ['LATCHKEY_STORE', 'sqlite:', 'store', /sqlite:<path>/],
    ['LATCHKEY_DB', 'redis://x', 'db', /"redis:\/\/x".*sqlite:.*postgres:\/\//],
    ['LATCHKEY_SESSION_TTL', '5', 'session_ttl', /"5".*integer from 60 to/],
    ['LATCHKEY_SESSION_TTL', 'a month', 'session_ttl', /integer from 60 to/],
    ['LATCHKEY_LOG_LEVEL', 'loud', 'log_level', /"loud".*one of fatal, error, warn, info, debug, trace, silent/],
    ['LATCHKEY_TRUST_PROXY', 'garbage', 'trust_proxy', /"garbage".*true, false, or a comma-separated list/],
    ['LATCHKEY_TRUST_PROXY', 'yes', 'trust_proxy', /true, false, or a comma-separated list/],
    ['LATCHKEY_TRUST_PROXY', '10.0.0.1,,10.0.0.2', 'trust_proxy', /true, false, or a comma-separated list/],
    ['LATCHKEY_TRUST_PROXY', '10.0.0.0/33', 'trust_proxy', /true, false, or a comma-separated list/],
    ['LATCHKEY_TRUST_PROXY', '300.1.1.1', 'trust_proxy', /true, false, or a comma-separated list/],
  ];
  for (const [envName, value, key, allowed] of badEnv) {
    it(`${envName}=${value} names ${key}`, () => {
      assertConfigError(() => loadConfig({ env: { [envName]: value } }), key, allowed);
    });
  }

  const badFile: readonly (readonly [content: Record<string, unknown>, key: string, allowed: RegExp])[] = [
    [{ port: 70000 }, 'port', /integer from 0 to 65535/],
    [{ port: 'abc' }, 'port', /integer from 0 to 65535/],
    [{ host: '' }, 'host', /a non-empty string/],
    [{ host: 42 }, 'host', /a non-empty string/],
    [{ data_dir: false }, 'data_dir', /a non-empty string/],
    [{ store: 'mysql://x' }, 'store', /a URL starting with sqlite:/],
    [{ db: 'redis://x' }, 'db', /a URL starting with sqlite:/],
    [{ session_ttl: 5 }, 'session_ttl', /integer from 60 to/],
    [{ session_ttl: 3600.5 }, 'session_ttl', /integer from 60 to/],
    [{ log_level: 'loud' }, 'log_level', /one of fatal/],
    [{ trust_proxy: 'garbage' }, 'trust_proxy', /true, false, or a comma-separated list/],
    [{ trust_proxy: 2 }, 'trust_proxy', /true, false, or a comma-separated list/],
    [{ trust_proxy: [] }, 'trust_proxy', /true, false, or a comma-separated list/],
    [{ password: { memory_cost: 1 } }, 'password.memory_cost', /integer from 1024 to/],
    [{ password: { concurrency: 0 } }, 'password.concurrency', /integer from 1 to 64/],
    [{ password: { max_queue: 0 } }, 'password.max_queue', /integer from 1 to/],
    [{ rate_limits: { ipv6_prefix: 129 } }, 'rate_limits.ipv6_prefix', /integer from 1 to 128/],
    [{ store_min_replicas: 1 }, 'store_min_replicas', /0 unless store is a Redis URL/],
    [{ store: 'redis://127.0.0.1:6379', store_min_replicas: 9 }, 'store_min_replicas', /integer from 0 to 5/],
    [{ password: 'strong' }, 'password', /an object/],
    [{ device_policies: { web: 'shared' } }, 'device_policies.web', /"exclusive" or/],
  ];
  for (const [content, key, allowed] of badFile) {
    it(`${JSON.stringify(content)} in the file names ${key}`, () => {
      assertConfigError(() => loadConfig({ env: {}, file: configFile(content) }), key, allowed);
    });
  }

  it('a bad file value is reported even when the environment overrides another key', () => {
    const file = configFile({ port: 'abc' });
    assertConfigError(() => loadConfig({ env: { LATCHKEY_HOST: '0.0.0.0' }, file }), 'port', /integer/);
  });

  it('a good environment value replaces a bad file value', () => {
    const file = configFile({ port: 'abc' });
    assert.equal(loadConfig({ env: { LATCHKEY_PORT: '9000' }, file }).port, 9000);
  });

  it('a missing config file names the config key', () => {
    assertConfigError(() => loadConfig({ env: {}, file: join(dir, 'missing.json') }), 'config', /missing\.json.*ENOENT.*a readable JSON file/);
  });

  it('a missing file named by LATCHKEY_CONFIG names the config key', () => {
    assertConfigError(() => loadConfig({ env: { LATCHKEY_CONFIG: join(dir, 'gone.json') } }), 'config', /a readable JSON file/);
  });

  it('an unreadable config file names the config key', (t) => {
    if (process.getuid?.() === 0) {
      t.skip('root reads files whatever their mode');
      return;
    }
    const file = configFile({ port: 9000 });
    chmodSync(file, 0o000);
    assertConfigError(() => loadConfig({ env: {}, file }), 'config', /EACCES.*a readable JSON file/);
  });

  it('a directory given as the config file names the config key', () => {
    assertConfigError(() => loadConfig({ env: {}, file: dir }), 'config', /a readable JSON file/);
  });

  for (const [what, text] of [
    ['invalid JSON', '{"port": 9000,'],
    ['a JSON array', '[1, 2]'],
    ['JSON null', 'null'],
    ['a JSON string', '"port"'],
    ['an empty file', ''],
  ] as const) {
    it(`${what} as the config file names the config key`, () => {
      assertConfigError(() => loadConfig({ env: {}, file: configFile(text) }), 'config', /a JSON object/);
    });
  }
});

describe('unknown keys', () => {
  it('refuses a misspelt top-level key instead of ignoring it', () => {
    assert.throws(() => parseConfig({ sesion_ttl: 60 }), (error: unknown) => error instanceof ConfigError && /sesion_ttl/.test(error.message));
  });
});

describe('store_tls_ca: a private CA for a TLS store', () => {
  const caFile = configFile(rootCertificates[0]);
  const tlsUrls = ['rediss://10.0.0.1:6380', 'rediss-cluster://10.0.0.1:7000,10.0.0.2:7000', 'rediss-sentinel://10.0.0.1:26379/main'];

  for (const store of tlsUrls) {
    it(`is read at load for ${store.slice(0, store.indexOf(':'))}`, () => {
      const config = loadConfig({ env: { LATCHKEY_STORE: store, LATCHKEY_STORE_TLS_CA: caFile } });
      assert.equal(config.store, store);
      assert.equal(config.storeTlsCa, rootCertificates[0]);
    });
  }

  it('is unset by default', () => {
    assert.equal(loadConfig({ env: { LATCHKEY_STORE: tlsUrls[1] } }).storeTlsCa, undefined);
  });

  it('is refused with a plain-TCP or SQLite store', () => {
    for (const store of ['redis://10.0.0.1:6379', 'redis-cluster://10.0.0.1:7000', 'sqlite:/tmp/x.db']) {
      assertConfigError(() => parseConfig({ store, store_tls_ca: caFile }), 'store_tls_ca', /unless store is a TLS URL \(rediss:\/\//);
    }
  });

  it('must be a readable file holding a PEM certificate', () => {
    const store = tlsUrls[0];
    assertConfigError(() => parseConfig({ store, store_tls_ca: join(dir, 'missing.pem') }), 'store_tls_ca', /a readable PEM CA certificate file/);
    assertConfigError(() => parseConfig({ store, store_tls_ca: configFile('not a certificate') }), 'store_tls_ca', /PEM certificates/);
    assertConfigError(() => parseConfig({ store, store_tls_ca: 42 }), 'store_tls_ca', /the path of a PEM CA certificate file/);
  });
});
