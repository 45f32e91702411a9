/**
 * Delivers the webhook outbox (adapters/db/outbox.ts, docs/design.md §3.6). Every node runs one: it
 * claims due rows with a lease, POSTs each as a Standard Webhooks message, deletes it on a 2xx and
 * otherwise frees it again after a backoff with jitter, until the webhook's max_age_seconds, when it
 * is dropped (an error log and latchkey_webhook_dropped_total). A row is only ever the oldest owed
 * for its user and webhook, so a user's events arrive in order; a node killed mid-delivery loses
 * nothing (its lease runs out and another node sends the row again, with the same webhook-id).
 */
import { Webhook } from 'standardwebhooks';
import type { WebhookTarget } from '../config/webhooks.ts';
import type { KyselyOutbox, OutboxRow } from '../adapters/db/outbox.ts';
import type { Clock } from '../ports/clock.ts';
import type { Metrics } from './metrics.ts';

export interface WebhookWorkerLogger {
  warn(object: Record<string, unknown>, message: string): void;
  error(object: Record<string, unknown>, message: string): void;
}

export interface WebhookWorkerOptions {
  /** How often an idle worker looks for due rows written by other nodes (a local write wakes it at once). */
  readonly pollMs?: number;
  /** Rows claimed per pass (one per user and webhook at most), delivered concurrently. */
  readonly batch?: number;
  /** Draws the jitter; Math.random by default. */
  readonly jitter?: () => number;
  /** False: no loop, only runOnce (tests). */
  readonly loop?: boolean;
}

export interface WebhookWorker {
  /** One pass: claim, deliver, settle. Returns how many rows it handled. */
  runOnce(): Promise<number>;
  stop(): Promise<void>;
}

/** The first retry comes after about a second; each failure doubles the wait up to `retryMaxMs`. */
export function backoffMs(attempts: number, retryMaxMs: number, jitter: number): number {
  const base = Math.min(retryMaxMs, 1000 * 2 ** Math.min(attempts - 1, 30));
  // Full spread over the upper half: receivers coming back up are not hit by every row at once.
  return Math.round(base / 2 + (base / 2) * jitter);
}

/** Longer than any attempt can take (the fetch timeout), so a live worker never loses its lease. */
export function leaseMs(targets: readonly WebhookTarget[]): number {
  return Math.max(...targets.map((t) => t.timeoutMs)) + 10_000;
}

export function createWebhookWorker(
  outbox: KyselyOutbox, targets: readonly WebhookTarget[], clock: Clock, metrics: Metrics, log: WebhookWorkerLogger, options: WebhookWorkerOptions = {},
): WebhookWorker {
  const byKey = new Map(targets.map((t) => [t.key, { target: t, signer: new Webhook(t.secret) }]));
  const keys = [...byKey.keys()];
  const lease = leaseMs(targets);
  const batch = options.batch ?? 50;
  const jitter = options.jitter ?? Math.random;

  /** Aborted by stop(): a shutdown does not wait out a receiver's timeout. */
  const stopping = new AbortController();

  async function deliver(row: OutboxRow): Promise<void> {
    const entry = byKey.get(row.webhook);
    if (entry === undefined) return;
    const { target, signer } = entry;
    const label = { webhook: target.key };
    const sentAt = clock.now();
    let ok = false;
    let problem = '';
    try {
      const response = await fetch(target.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'webhook-id': row.event_id,
          'webhook-timestamp': String(Math.floor(sentAt / 1000)),
          'webhook-signature': signer.sign(row.event_id, new Date(sentAt), row.body),
        },
        body: row.body,
        // A redirect would hand the event to a host nobody configured.
        redirect: 'error',
        signal: AbortSignal.any([AbortSignal.timeout(target.timeoutMs), stopping.signal]),
      });
      await response.body?.cancel().catch(() => undefined);
      ok = response.ok;
      problem = `answered ${response.status}`;
    } catch (error) {
      if (stopping.signal.aborted) {
        // Shutting down mid-attempt: free the row for any node, no attempt counted. The receiver may
        // have it already; it comes again under the same webhook-id.
        await outbox.retryAt(row.id, row.attempts, clock.now());
        return;
      }
      problem = error instanceof DOMException && error.name === 'TimeoutError' ? `timed out after ${target.timeoutMs} ms` : 'unreachable';
    }
    if (ok) {
      // Counted as the receiver answered: a row whose removal fails is sent again (a duplicate).
      metrics.webhookDelivered.inc(label);
      await outbox.remove(row.id);
      return;
    }
    metrics.webhookFailed.inc(label);
    const attempts = row.attempts + 1;
    const now = clock.now();
    const nextAt = now + backoffMs(attempts, target.retryMaxMs, jitter());
    if (nextAt > row.created_at + target.maxAgeSeconds * 1000) {
      await outbox.remove(row.id);
      metrics.webhookDropped.inc(label);
      log.error({ webhook: target.key, event_id: row.event_id, type: row.type, uid: row.uid, attempts, problem }, 'webhook event dropped: no 2xx within max_age_seconds');
      return;
    }
    await outbox.retryAt(row.id, attempts, nextAt);
  }

  async function runOnce(): Promise<number> {
    const rows = await outbox.claim(keys, clock.now(), lease, batch);
    await Promise.all(rows.map((row) => deliver(row).catch((error: unknown) => {
      // The database failed while settling: the lease runs out and the row is tried again.
      log.warn({ err: error, event_id: row.event_id }, 'webhook delivery not settled; retried after its lease');
    })));
    const stats = await outbox.stats(keys);
    metrics.webhookPending.set(stats.pending);
    metrics.webhookLagSeconds.set(stats.oldestAt === null ? 0 : Math.max(0, clock.now() - stats.oldestAt) / 1000);
    return rows.length;
  }

  const pollMs = options.pollMs ?? 1000;
  let stopped = false;
  let wake: (() => void) | null = null;
  let timer: NodeJS.Timeout | null = null;
  const unsubscribe = outbox.onWritten(() => wake?.());
  const loop = (async () => {
    while (!stopped && options.loop !== false) {
      let handled = 0;
      try {
        handled = await runOnce();
      } catch (error) {
        log.warn({ err: error, task: 'webhook-delivery' }, 'webhook delivery pass failed; trying again');
      }
      // Straight on while there is work; else wait for the poll or a local write.
      if (handled > 0 || stopped) continue;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, pollMs);
        timer.unref();
      });
      wake = null;
    }
  })();

  return {
    runOnce,
    async stop() {
      stopped = true;
      stopping.abort();
      unsubscribe();
      if (timer !== null) clearTimeout(timer);
      wake?.();
      await loop;
    },
  };
}
