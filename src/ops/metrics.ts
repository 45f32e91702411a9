import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One registry per app instance, so several instances can live in one test process. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'latchkey_' });
  return {
    registry,
    logins: new Counter({
      name: 'latchkey_login_total',
      help: 'Login attempts by method and result',
      labelNames: ['method', 'result'] as const,
      registers: [registry],
    }),
    logouts: new Counter({
      name: 'latchkey_logout_total',
      help: 'Logouts by result',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    // No label or count here may depend on whether an account has the address (docs/security.md §2, item 4):
    // a "sent" / "suppressed" split was an account oracle for anyone who could scrape twice.
    codesSent: new Counter({
      name: 'latchkey_code_sent_total',
      help: 'Accepted one-time code requests by channel and purpose (the same whether or not an account has the address)',
      labelNames: ['channel', 'purpose'] as const,
      registers: [registry],
    }),
    codeDeliveryFailed: new Counter({
      name: 'latchkey_code_delivery_failed_total',
      help: 'One-time codes the sender could not deliver, by channel (alert on it: the sender is failing)',
      labelNames: ['channel'] as const,
      registers: [registry],
    }),
    mfa: new Counter({
      name: 'latchkey_mfa_total',
      help: 'Second-factor events: enrol, remove, verify (a login\'s second step), step_up, reset; by method and result',
      labelNames: ['event', 'method', 'result'] as const,
      registers: [registry],
    }),
    revoked: new Counter({
      name: 'latchkey_sessions_revoked_total',
      help: 'Sessions ended, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    imQuitRetries: new Counter({
      name: 'latchkey_im_quit_retry_total',
      help: 'Retried device_quit calls the IM server missed: delivered, failed (tried again later), overdue (a job passed max_attempts; still retried)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    imQuitPending: new Gauge({
      name: 'latchkey_im_quit_pending',
      help: 'Users and device flags that still owe the IM server a device_quit (as of this node\'s last pass)',
      registers: [registry],
    }),
    auditPruned: new Counter({
      name: 'latchkey_audit_pruned_total',
      help: 'Audit events deleted past their retention',
      registers: [registry],
    }),
    // Webhooks (ops/webhook-worker.ts, docs/design.md §3.6), labelled by the target's key (a hash of its URL).
    webhookDelivered: new Counter({
      name: 'latchkey_webhook_delivered_total',
      help: 'Webhook events delivered (answered 2xx)',
      labelNames: ['webhook'] as const,
      registers: [registry],
    }),
    webhookFailed: new Counter({
      name: 'latchkey_webhook_failed_total',
      help: 'Failed webhook delivery attempts (non-2xx, timeout, connection error); each is retried',
      labelNames: ['webhook'] as const,
      registers: [registry],
    }),
    webhookDropped: new Counter({
      name: 'latchkey_webhook_dropped_total',
      help: 'Webhook events given up after max_age_seconds without a 2xx (alert on it)',
      labelNames: ['webhook'] as const,
      registers: [registry],
    }),
    webhookLost: new Counter({
      name: 'latchkey_webhook_event_lost_total',
      help: 'Events that could not be written to the outbox (the account database failed after a session ended)',
      labelNames: ['type'] as const,
      registers: [registry],
    }),
    webhookPending: new Gauge({
      name: 'latchkey_webhook_pending',
      help: 'Webhook deliveries owed (outbox rows), as of this node\'s last delivery pass',
      registers: [registry],
    }),
    webhookLagSeconds: new Gauge({
      name: 'latchkey_webhook_lag_seconds',
      help: 'Age of the oldest webhook delivery still owed (0 when none), as of this node\'s last delivery pass',
      registers: [registry],
    }),
    validation: new Histogram({
      name: 'latchkey_validation_seconds',
      help: 'Time to validate a session token',
      labelNames: ['result'] as const,
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
