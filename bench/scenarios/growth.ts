/**
 * growth: validation requests/s and memory with more and more live sessions in the store
 * (10^3, 10^5, and 10^6 with `--growth-sizes`). Validation is one keyed read, so its cost must not
 * grow with the number of sessions; the server's memory must not either (it holds no sessions),
 * only the store's.
 *
 * Sessions are seeded through the Kv adapter (bench/seed.ts), spread over registered users; the
 * load rotates through a uniform sample of them. Baseline: the first (smallest) size. Seeding 10^6
 * sessions takes minutes, over which this VM's speed drifts (bare Fastify measured 20–38 µs/request
 * within one hour), so every step also measures bare Fastify right before itself: the drift-free
 * figure is each step's CPU per request ÷ bare's, compared with the first step's.
 */
import { measureLoad, type Measured } from '../measure.ts';
import { fixed, formatRows, noiseWarnings } from '../report.ts';
import { mib } from '../memory.ts';
import { openStore, seedSessions } from '../seed.ts';
import { CHEAP_PASSWORDS, checkTokens, registerUser, startBenchServer, type StoreKind } from '../server.ts';
import { startTarget } from '../targets.ts';
import type { Progress, Scenario, Settings } from './scenario.ts';

const USERS = 100;

interface Step {
  readonly store: StoreKind;
  readonly liveSessions: number;
  /** Seconds the seeding of this step's new sessions took, and their rate. */
  readonly seedSeconds: number;
  readonly measured: Measured;
  /** Bare Fastify, measured right before this step. */
  readonly bare: Measured;
  readonly storeFileMiB: number | null;
}

async function measureBare(settings: Settings): Promise<Measured> {
  const bare = await startTarget('bare', 0);
  try {
    return await measureLoad('growth/bare', { serverPid: bare.serverPid, redisPids: [] }, {
      url: bare.url, path: bare.path, tokens: bare.tokens, connections: settings.connections, durationSeconds: settings.durationSeconds,
    }, settings.warmupSeconds);
  } finally {
    await bare.stop();
  }
}

/** CPU per request relative to bare Fastify measured just before: what host drift does not change. */
const overBare = (step: Step): number | null =>
  step.measured.serverCpuMicrosPerRequest === null || step.bare.serverCpuMicrosPerRequest === null
    ? null : step.measured.serverCpuMicrosPerRequest / step.bare.serverCpuMicrosPerRequest;

async function runOnStore(store: StoreKind, settings: Settings, progress: Progress): Promise<Step[]> {
  progress(`growth, ${store}: starting…`);
  const server = await startBenchServer(store, { password: CHEAP_PASSWORDS });
  const steps: Step[] = [];
  try {
    const uids: string[] = [];
    for (let u = 0; u < USERS; u += 1) uids.push((await registerUser(server.url, `grower${u}`)).uid);
    // Each registration made a session too.
    let live = USERS;
    const kv = await openStore(server.storeUrl);
    try {
      for (const size of [...settings.growthSizes].sort((a, b) => a - b)) {
        progress(`growth, ${store}: seeding up to ${size} live sessions…`);
        const started = performance.now();
        // The tokens loaded: a uniform sample of this step's new sessions, which are ≥ 99 % of the
        // store from 10^5 on (and all of it at 10^3).
        const { written, tokens } = await seedSessions(kv, uids, Math.max(0, size - live), settings.sessions);
        const seedSeconds = (performance.now() - started) / 1000;
        live += written;
        await checkTokens(server.url, tokens, 200);
        progress(`growth, ${store}: bare Fastify, then ${size} live sessions…`);
        const bare = await measureBare(settings);
        const measured = await measureLoad(`growth/${store}/${size}`, { serverPid: server.pid, redisPids: server.redisPids }, {
          url: server.url, path: '/v1/user/current', tokens, connections: settings.connections, durationSeconds: settings.durationSeconds,
        }, settings.warmupSeconds);
        steps.push({ store, liveSessions: live, seedSeconds, measured, bare, storeFileMiB: mib(server.storeFileBytes()) });
      }
    } finally {
      await kv.close();
    }
    return steps;
  } finally {
    await server.stop();
  }
}

export const growthScenario: Scenario = async (settings, progress) => {
  const steps: Step[] = [];
  for (const store of settings.stores) steps.push(...(await runOnStore(store, settings, progress)));
  const rows = steps.map((s) => {
    const first = steps.find((f) => f.store === s.store);
    const ratio = first === undefined ? null : s.measured.load.requestsPerSecond / first.measured.load.requestsPerSecond;
    const cost = overBare(s);
    const firstCost = first === undefined ? null : overBare(first);
    const drift = cost === null || firstCost === null ? null : cost / firstCost;
    return [
      `${s.store} ${s.liveSessions.toLocaleString('en-US')}`,
      s.measured.load.requestsPerSecond.toFixed(0), s.measured.load.p50Ms.toFixed(1), s.measured.load.p99Ms.toFixed(1),
      fixed(ratio, 2), fixed(s.measured.serverCpuMicrosPerRequest, 1), fixed(s.bare.serverCpuMicrosPerRequest, 1), fixed(cost, 2), fixed(drift, 2),
      fixed(s.measured.serverRssMiB, 0), fixed(s.measured.serverPeakRssMiB, 0),
      s.store === 'redis' ? fixed(s.measured.redisRssMiB, 0) : fixed(s.storeFileMiB, 0),
      s.seedSeconds.toFixed(1),
    ];
  });
  const warnings = steps.flatMap((s) => noiseWarnings(`${s.store} ${s.liveSessions}`, s.measured.cpu));
  const text = [
    `validation with growing numbers of live sessions — ${settings.connections} connections, ${settings.durationSeconds} s each, ` +
      `${settings.sessions} tokens sampled from the whole store, sessions spread over ${USERS} users`,
    '',
    formatRows(['store, live sessions', 'req/s', 'p50 ms', 'p99 ms', 'ratio to first', 'server µs/req', 'bare µs/req', '÷ bare',
      '÷ bare vs first', 'server RSS MiB',
      'peak RSS MiB', 'store MiB', 'seeding s'], rows),
    'store MiB: redis-server RSS on Redis; the database file and its WAL on SQLite',
    '÷ bare: server µs/req ÷ bare Fastify\'s, measured right before the step; ÷ bare vs first: that, relative to the first step (1.00 = no growth)',
    ...(warnings.length > 0 ? ['', ...warnings.map((w) => `warning: ${w}`)] : []),
  ].join('\n');
  return { text, data: steps, missed: [] };
};
