import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config/config.ts';
import type { Runtime, RuntimeOverrides } from './runtime/runtime.ts';
import { buildApp } from './http/app.ts';
import { createLogger } from './logger.ts';
import { startImQuitWorker } from './ops/im-quit-worker.ts';
import { startOctoMirrorWorker } from './ops/octo-mirror-worker.ts';
import { startAuditPruner } from './ops/audit-pruner.ts';
import { startMetricsListener, type MetricsListener } from './ops/metrics-listener.ts';
import { startDevicePruner } from './ops/device-pruner.ts';
import { openCheckedRuntime } from './ops/checked-runtime.ts';
import { keepDeploymentId, maskUrl } from './ops/deployment-id.ts';
import { createWebhookWorker } from './ops/webhook-worker.ts';

export interface Server {
  readonly app: FastifyInstance;
  readonly runtime: Runtime;
  readonly url: string;
  /** `GET` this for Prometheus metrics (the metrics listener); null when `metrics.port` is off. */
  readonly metricsUrl: string | null;
  close(): Promise<void>;
}

export interface StartOptions {
  /** While a store does not answer, keep trying (one log line per attempt) instead of failing. */
  readonly wait?: boolean;
}

/**
 * Builds and starts one latchkey node. Rejects, before listening, when a store does not answer or
 * the store and the account database belong to different deployments (ops/checked-runtime.ts).
 */
export async function startServer(
  config: Config,
  logger: Logger = createLogger(config.logLevel),
  overrides: RuntimeOverrides = {},
  options: StartOptions = {},
): Promise<Server> {
  const { runtime, deploymentId } = await openCheckedRuntime(config, logger, 'serve', overrides, {
    wait: options.wait === true,
    onRetry: (attempt, reason) => logger.warn({ attempt }, `${reason}; trying again (--wait)`),
  });
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
    ...(runtime.octoMirror === null || config.compat.octoRedis === null ? [] : [startOctoMirrorWorker(runtime.octoMirror, config.compat.octoRedis.retryIntervalMs, logger)]),
    startAuditPruner(runtime, config.audit.retentionDays, logger),
    startDevicePruner(runtime, logger),
    keepDeploymentId(runtime.kv, deploymentId, logger),
    // Webhooks (docs/design.md §3.6): only when some are configured; any node delivers any row.
    ...(runtime.outbox === null ? [] : [createWebhookWorker(runtime.outbox, config.webhooks, runtime.clock, runtime.metrics, logger)]),
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
export async function serve(config: Config, options: StartOptions = {}): Promise<void> {
  const logger = createLogger(config.logLevel);
  const server = await startServer(config, logger, {}, options);
  logger.info({ url: server.url, metrics_url: server.metricsUrl, store: maskUrl(config.store), db: maskUrl(config.db) }, 'latchkey listening');
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
