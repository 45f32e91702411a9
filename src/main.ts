import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config.ts';
import { createRuntime, type Runtime, type RuntimeOverrides } from './runtime.ts';
import { buildApp } from './http/app.ts';
import { createLogger } from './logger.ts';
import { startImQuitWorker } from './ops/im-quit-worker.ts';
import { startAuditPruner } from './ops/audit-pruner.ts';
import { startMetricsListener, type MetricsListener } from './ops/metrics-listener.ts';
import { startDevicePruner } from './ops/device-pruner.ts';

export interface Server {
  readonly app: FastifyInstance;
  readonly runtime: Runtime;
  readonly url: string;
  /** `GET` this for Prometheus metrics (the metrics listener); null when `metrics.port` is off. */
  readonly metricsUrl: string | null;
  close(): Promise<void>;
}

/** Builds and starts one latchkey node. */
export async function startServer(
  config: Config,
  logger: Logger = createLogger(config.logLevel),
  overrides: RuntimeOverrides = {},
): Promise<Server> {
  const runtime = await createRuntime(config, logger, overrides);
  const app = await buildApp(runtime, logger);
  let metrics: MetricsListener | null = null;
  try {
    await app.listen({ host: config.host, port: config.port });
    const { listener } = config.metrics;
    if (listener !== null) metrics = await startMetricsListener(runtime.metrics.registry, listener.host, listener.port);
  } catch (error) {
    await app.close();
    await runtime.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  // Every node runs these; they coordinate through the stores (per-job claims, a prune lock).
  const jobs = [
    ...(runtime.imEnabled ? [startImQuitWorker(runtime.sessions, runtime.metrics, config.im.quitRetry.intervalMs, logger)] : []),
    startAuditPruner(runtime, config.audit.retentionDays, logger),
    startDevicePruner(runtime, logger),
  ];
  let closing: Promise<void> | null = null;
  return {
    app,
    runtime,
    url: `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`,
    metricsUrl: metrics?.url ?? null,
    // Stop accepting, let in-flight requests finish, then close Redis and the database.
    close: () => (closing ??= Promise.all([app.close(), metrics?.close()]).then(() => Promise.all(jobs.map((job) => job.stop()))).then(() => runtime.close())),
  };
}

const DRAIN_SECONDS = 30;

/** `latchkey serve`: runs until SIGTERM or SIGINT, then drains for up to 30 s and exits. */
export async function serve(config: Config): Promise<void> {
  const logger = createLogger(config.logLevel);
  const server = await startServer(config, logger);
  logger.info({ url: server.url, metrics_url: server.metricsUrl, store: redactUrl(config.store), db: redactUrl(config.db) }, 'latchkey listening');
  const stop = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    // A request that hangs (a store that never answers) must not keep the node up forever.
    setTimeout(() => {
      logger.error({ drainSeconds: DRAIN_SECONDS }, 'in-flight requests did not finish; exiting');
      process.exit(1);
    }, DRAIN_SECONDS * 1000).unref();
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

/** Store URLs may carry passwords; logs get them without. */
function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
