/**
 * login: password logins per second with argon2id at the configured cost (latchkey's default,
 * OWASP's 19 MiB × 2 passes), and what they do to validation: the same validation load runs alone,
 * then while logins run. Hashing runs on libuv's thread pool, off the event loop, so validation
 * should slow only by the CPU the hashing takes from it — its p99 must not collapse.
 *
 * Baseline for logins/s: argon2id verifications per second in this process, as many at once as
 * the server's thread pool runs (4): the ceiling of any password login on this machine.
 */
import { createPasswordHasher } from '../../src/runtime/password-hasher.ts';
import { OWASP_ARGON2 } from '../../src/adapters/passwords/argon2-hasher.ts';
import type { PasswordHasher } from '../../src/ports/password-hasher.ts';
import { assertAllSucceeded, generateLoad, type LoadOptions, type LoadResult } from '../load.ts';
import { measure, measureLoad, type Measured } from '../measure.ts';
import { fixed, formatRows, noiseWarnings } from '../report.ts';
import { openStore, seedSessions } from '../seed.ts';
import { BENCH_DEVICE, BENCH_PASSWORD, checkTokens, postJson, registerUser, startBenchServer, type StoreKind } from '../server.ts';
import type { Progress, Scenario, Settings } from './scenario.ts';

/** Validation p99 during logins may be at most this many times its p99 alone (both at the default password concurrency). */
export const TARGET_P99_DURING_LOGINS = 2;

/** libuv's default thread pool size, which runs @node-rs/argon2's work in the server. */
const HASHING_THREADS = 4;
/** PC: multi-session with a cap of 10 by default, so the login user's index stays small. */
const LOGIN_FLAG = 2;

interface StoreResult {
  readonly store: StoreKind;
  readonly validateAlone: Measured;
  readonly loginsAlone: Measured;
  readonly validateDuringLogins: Measured;
  readonly loginsDuringValidation: LoadResult;
}

async function argon2Baseline(seconds: number): Promise<number> {
  // All of the machine: the server keeps a core for its event loop (password.concurrency), this does not.
  const hasher = createPasswordHasher({ concurrency: HASHING_THREADS });
  try {
    return await verificationsPerSecond(hasher, seconds);
  } finally {
    await hasher.close();
  }
}

async function verificationsPerSecond(hasher: PasswordHasher, seconds: number): Promise<number> {
  const stored = await hasher.hash(BENCH_PASSWORD);
  let verified = 0;
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  const worker = async () => {
    while (performance.now() < until) {
      if (!(await hasher.verify(stored, BENCH_PASSWORD)).ok) throw new Error('argon2 baseline: verify failed');
      verified += 1;
    }
  };
  await Promise.all(Array.from({ length: HASHING_THREADS }, worker));
  return verified / ((performance.now() - started) / 1000);
}

async function runOnStore(store: StoreKind, settings: Settings, progress: Progress): Promise<StoreResult> {
  progress(`login, ${store}: starting (argon2id at latchkey's default cost), seeding ${settings.sessions} sessions…`);
  // No password override: logins hash at the configured default.
  const server = await startBenchServer(store, {});
  try {
    const validator = await registerUser(server.url, 'validator');
    const kv = await openStore(server.storeUrl);
    const { tokens } = await seedSessions(kv, [validator.uid], settings.sessions, settings.sessions).finally(() => kv.close());
    await checkTokens(server.url, tokens, 200);
    const loginUser = await registerUser(server.url, 'login-user', LOGIN_FLAG);
    const loginBody = { username: loginUser.username, password: BENCH_PASSWORD, flag: LOGIN_FLAG, device: BENCH_DEVICE };
    const check = await postJson(`${server.url}/v1/user/login`, loginBody);
    if (check.status !== 200 || typeof check.body.token !== 'string') throw new Error(`login answered ${check.status}`);

    const processes = { serverPid: server.pid, redisPids: server.redisPids };
    const validate: LoadOptions = {
      url: server.url, path: '/v1/user/current', tokens, connections: settings.connections, durationSeconds: settings.durationSeconds,
    };
    const login: LoadOptions = {
      url: server.url, path: '/v1/user/login', method: 'POST', body: loginBody, tokens: [],
      connections: settings.loginConnections, durationSeconds: settings.durationSeconds,
    };
    progress(`login, ${store}: validation alone, logins alone, then both at once…`);
    const validateAlone = await measureLoad(`login/${store}: validation alone`, processes, validate, settings.warmupSeconds);
    const loginsAlone = await measureLoad(`login/${store}: logins alone`, processes, login, Math.min(2, settings.warmupSeconds));
    let loginsDuringValidation: LoadResult | undefined;
    const validateDuringLogins = await measure(`login/${store}: validation during logins`, processes, async () => {
      const [validated, loggedIn] = await Promise.all([generateLoad(validate), generateLoad(login)]);
      loginsDuringValidation = loggedIn;
      return validated;
    });
    if (loginsDuringValidation === undefined) throw new Error('the login load did not run');
    assertAllSucceeded(`login/${store}: logins during validation`, loginsDuringValidation);
    return { store, validateAlone, loginsAlone, validateDuringLogins, loginsDuringValidation };
  } finally {
    await server.stop();
  }
}

export const loginScenario: Scenario = async (settings, progress) => {
  progress(`login: argon2id baseline (${HASHING_THREADS} verifications at once, in the runner)…`);
  const argon2PerSecond = await argon2Baseline(Math.max(2, Math.min(5, settings.durationSeconds)));
  const results: StoreResult[] = [];
  for (const store of settings.stores) results.push(await runOnStore(store, settings, progress));

  const rows = results.flatMap((r) => {
    const row = (phase: string, load: LoadResult, m: Measured | null, ratio: number | null, ratioOf: string) => [
      `${r.store} ${phase}`, load.requestsPerSecond.toFixed(0), load.p50Ms.toFixed(1), load.p99Ms.toFixed(1),
      ratio === null ? '' : `${ratio.toFixed(2)} ${ratioOf}`,
      fixed(m?.cpu.serverCores ?? null, 2), fixed(m?.serverPeakRssMiB ?? null, 0),
    ];
    return [
      row('validate alone', r.validateAlone.load, r.validateAlone, null, ''),
      row('validate during logins', r.validateDuringLogins.load, r.validateDuringLogins,
        r.validateDuringLogins.load.requestsPerSecond / r.validateAlone.load.requestsPerSecond, '× alone'),
      row('logins alone', r.loginsAlone.load, r.loginsAlone, r.loginsAlone.load.requestsPerSecond / argon2PerSecond, '× argon2'),
      row('logins during validation', r.loginsDuringValidation, null,
        r.loginsDuringValidation.requestsPerSecond / r.loginsAlone.load.requestsPerSecond, '× alone'),
    ];
  });
  // autocannon rounds to 1 ms: an alone p99 of 0 ms counts as 1.
  const p99Ratio = (r: StoreResult) => r.validateDuringLogins.load.p99Ms / Math.max(1, r.validateAlone.load.p99Ms);
  const missed = results
    .filter((r) => p99Ratio(r) > TARGET_P99_DURING_LOGINS)
    .map((r) => `login ${r.store}: validation p99 during logins ${r.validateDuringLogins.load.p99Ms} ms > ${TARGET_P99_DURING_LOGINS}× alone (${r.validateAlone.load.p99Ms} ms)`);
  const warnings = results.flatMap((r) => [
    ...noiseWarnings(`${r.store} validate alone`, r.validateAlone.cpu),
    ...noiseWarnings(`${r.store} logins alone`, r.loginsAlone.cpu),
  ]);
  const { memoryCost, timeCost, parallelism } = OWASP_ARGON2;
  const text = [
    `password logins (argon2id m=${memoryCost} KiB, t=${timeCost}, p=${parallelism}) and validation at the same time — ` +
      `${settings.loginConnections} login connections, ${settings.connections} validation connections, ${settings.durationSeconds} s each`,
    `baseline: ${argon2PerSecond.toFixed(1)} argon2id verifications/s in the runner, ${HASHING_THREADS} at once`,
    '',
    formatRows(['phase', 'req/s', 'p50 ms', 'p99 ms', 'ratio', 'server cores', 'peak RSS MiB'], rows),
    ...results.map((r) => `${r.store}: validation p99 ${r.validateAlone.load.p99Ms} ms alone, ` +
      `${r.validateDuringLogins.load.p99Ms} ms during logins: ${p99Ratio(r).toFixed(2)}× (target ≤ ${TARGET_P99_DURING_LOGINS}×)`),
    ...(warnings.length > 0 ? ['', ...warnings.map((w) => `warning: ${w}`)] : []),
  ].join('\n');
  return { text, data: { argon2PerSecond, argon2: OWASP_ARGON2, hashingThreads: HASHING_THREADS, results }, missed };
};
