/**
 * logout: logouts per second (`POST /v1/user/quit`, each token once), and revoke-all of a user with
 * 1,000 sessions (`POST /v1/user/sessions/revoke_others` from one of them: 999 end in one call, by
 * the same code path as an admin's revoke-all or a ban).
 *
 * The sessions are seeded through the Kv adapter (bench/seed.ts). Baseline: validation req/s on
 * the same node and store, measured first. Afterwards every logged-out or revoked token is tried:
 * all must answer 401, or the figures do not count.
 */
import { generateLoad, type LoadOptions } from '../load.ts';
import { measure, measureLoad, type Measured } from '../measure.ts';
import { fixed, formatRows, noiseWarnings } from '../report.ts';
import { openStore, seedSessions } from '../seed.ts';
import { CHEAP_PASSWORDS, checkTokens, postJson, registerUser, startBenchServer, type StoreKind } from '../server.ts';
import type { Progress, Scenario, Settings } from './scenario.ts';

/** Users the logged-out sessions are spread over (real users have a handful of sessions each). */
const LOGOUT_USERS = 20;
const REVOKE_SESSIONS = 1000;
const REVOKE_REPEATS = 3;

interface StoreResult {
  readonly store: StoreKind;
  readonly validate: Measured;
  readonly logout: Measured;
  /** Wall time of each revoke_others call, ms. */
  readonly revokeMs: readonly number[];
  readonly revokedPerCall: number;
}

async function runOnStore(store: StoreKind, settings: Settings, progress: Progress): Promise<StoreResult> {
  const warmupCount = Math.min(5000, Math.round(settings.logoutSessions / 10));
  progress(`logout, ${store}: starting, seeding ${settings.logoutSessions + warmupCount} + ${REVOKE_REPEATS}×${REVOKE_SESSIONS} sessions…`);
  const server = await startBenchServer(store, { password: CHEAP_PASSWORDS });
  try {
    const users = [];
    for (let u = 0; u < LOGOUT_USERS; u += 1) users.push(await registerUser(server.url, `quitter${u}`));
    const revokers = [];
    for (let u = 0; u < REVOKE_REPEATS; u += 1) revokers.push(await registerUser(server.url, `revoker${u}`));
    const kv = await openStore(server.storeUrl);
    const uids = users.map((u) => u.uid);
    const seeded = await (async () => {
      const warm = await seedSessions(kv, uids, warmupCount, warmupCount);
      const measured = await seedSessions(kv, uids, settings.logoutSessions, settings.logoutSessions);
      // Each revoker's own registration session is the 1,000th.
      const revoke = [];
      for (const r of revokers) revoke.push((await seedSessions(kv, [r.uid], REVOKE_SESSIONS - 1, REVOKE_SESSIONS)).tokens);
      return { warm: warm.tokens, measured: measured.tokens, revoke };
    })().finally(() => kv.close());
    const processes = { serverPid: server.pid, redisPids: server.redisPids };

    const sample = seeded.measured.slice(0, settings.sessions);
    await checkTokens(server.url, [...sample, ...seeded.warm.slice(0, 100)], 200);
    const validate = await measureLoad(`logout/${store}: validation`, processes, {
      url: server.url, path: '/v1/user/current', tokens: sample, connections: settings.connections, durationSeconds: settings.durationSeconds,
    }, settings.warmupSeconds);

    progress(`logout, ${store}: ${settings.logoutSessions} logouts…`);
    const quit = (tokens: readonly string[]): LoadOptions => ({
      url: server.url, path: '/v1/user/quit', method: 'POST', tokens, connections: settings.connections,
      durationSeconds: settings.durationSeconds, amount: tokens.length,
    });
    await generateLoad(quit(seeded.warm));
    const logout = await measure(`logout/${store}: logouts`, processes, () => generateLoad(quit(seeded.measured)));
    await checkTokens(server.url, seeded.measured, 401);

    progress(`logout, ${store}: revoke_others of ${REVOKE_REPEATS} users with ${REVOKE_SESSIONS} sessions each…`);
    const revokeMs: number[] = [];
    let revokedPerCall = 0;
    for (const [index, r] of revokers.entries()) {
      const tokens = seeded.revoke[index] ?? [];
      const started = performance.now();
      const answer = await postJson(`${server.url}/v1/user/sessions/revoke_others`, {}, r.token);
      revokeMs.push(performance.now() - started);
      if (answer.status !== 200 || answer.body.revoked !== REVOKE_SESSIONS - 1) {
        throw new Error(`revoke_others answered ${answer.status} ${JSON.stringify(answer.body)}, not ${REVOKE_SESSIONS - 1} revoked`);
      }
      revokedPerCall = answer.body.revoked;
      await checkTokens(server.url, tokens, 401);
      await checkTokens(server.url, [r.token], 200);
    }
    return { store, validate, logout, revokeMs, revokedPerCall };
  } finally {
    await server.stop();
  }
}

const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

export const logoutScenario: Scenario = async (settings, progress) => {
  const results: StoreResult[] = [];
  for (const store of settings.stores) results.push(await runOnStore(store, settings, progress));
  const rows = results.flatMap((r) => [
    [`${r.store} validate (baseline)`, r.validate.load.requestsPerSecond.toFixed(0), r.validate.load.p50Ms.toFixed(1),
      r.validate.load.p99Ms.toFixed(1), '', fixed(r.validate.serverCpuMicrosPerRequest, 1), fixed(r.validate.serverPeakRssMiB, 0)],
    [`${r.store} logout`, r.logout.load.requestsPerSecond.toFixed(0), r.logout.load.p50Ms.toFixed(1), r.logout.load.p99Ms.toFixed(1),
      (r.logout.load.requestsPerSecond / r.validate.load.requestsPerSecond).toFixed(2),
      fixed(r.logout.serverCpuMicrosPerRequest, 1), fixed(r.logout.serverPeakRssMiB, 0)],
  ]);
  const revokeRows = results.map((r) => [
    r.store, String(r.revokedPerCall), median(r.revokeMs).toFixed(1), r.revokeMs.map((ms) => ms.toFixed(1)).join(' / '),
    (r.revokedPerCall / (median(r.revokeMs) / 1000)).toFixed(0),
  ]);
  const warnings = results.flatMap((r) => [...noiseWarnings(`${r.store} validate`, r.validate.cpu), ...noiseWarnings(`${r.store} logout`, r.logout.cpu)]);
  const text = [
    `logouts (POST /v1/user/quit, ${settings.logoutSessions} sessions, each once, ${settings.connections} connections) and revoke-all`,
    '',
    formatRows(['phase', 'req/s', 'p50 ms', 'p99 ms', 'ratio to validate', 'server µs/req', 'peak RSS MiB'], rows),
    '',
    formatRows(['revoke_others', 'sessions ended', 'median ms', 'each run ms', 'sessions ended/s'], revokeRows),
    '',
    'every logged-out and revoked token was tried afterwards: all answered 401',
    ...(warnings.length > 0 ? ['', ...warnings.map((w) => `warning: ${w}`)] : []),
  ].join('\n');
  return { text, data: results, missed: [] };
};
