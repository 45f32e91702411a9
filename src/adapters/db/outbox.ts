/**
 * The webhook outbox in the account database (docs/design.md §3.6): one row per (event, webhook)
 * still owed. Rows are written in the same transaction as the account change they report where
 * there is one (account-repo.ts), else right where the change is made (sessions, EventSink.emit).
 * Any node delivers: a worker claims a user's OLDEST row per webhook with a lease (one conditional
 * UPDATE, atomic on SQLite and PostgreSQL alike), so a user's events go out strictly in order and a
 * killed worker's rows come free again when its lease runs out.
 */
import { type Insertable, type Kysely, type Selectable } from 'kysely';
import type { WebhookTarget } from '../../config/webhooks.ts';
import type { Clock } from '../../ports/clock.ts';
import type { DomainEvent, EventSink } from '../../ports/events.ts';
import type { Random } from '../../ports/random.ts';
import { guard } from './db-errors.ts';
import type { Database, WebhookOutboxTable } from './schema.ts';

export type OutboxRow = Selectable<WebhookOutboxTable>;
export type NewOutboxRow = Insertable<WebhookOutboxTable>;

/** Turns events into the rows owed to the webhooks that asked for their type (none: no rows). */
export class OutboxRows {
  readonly #targets: readonly WebhookTarget[];
  readonly #clock: Clock;
  readonly #random: Random;

  constructor(targets: readonly WebhookTarget[], clock: Clock, random: Random) {
    this.#targets = targets;
    this.#clock = clock;
    this.#random = random;
  }

  get enabled(): boolean {
    return this.#targets.length > 0;
  }

  rows(events: readonly DomainEvent[]): NewOutboxRow[] {
    if (this.#targets.length === 0) return [];
    const now = this.#clock.now();
    const rows: NewOutboxRow[] = [];
    for (const event of events) {
      const targets = this.#targets.filter((t) => t.events === null || t.events.has(event.type));
      if (targets.length === 0) continue;
      // One id per event, the same for every webhook and every attempt (the `webhook-id` header).
      const eventId = `msg_${this.#random.bytes(16).toString('hex')}`;
      const body = JSON.stringify({ type: event.type, timestamp: new Date(now).toISOString(), data: event.data });
      for (const target of targets) {
        rows.push({ webhook: target.key, event_id: eventId, uid: event.data.uid, type: event.type, body, created_at: now, attempts: 0, next_at: now, leased_until: 0 });
      }
    }
    return rows;
  }
}

export async function insertOutboxRows(db: Kysely<Database>, rows: readonly NewOutboxRow[]): Promise<void> {
  if (rows.length > 0) await db.insertInto('webhook_outbox').values([...rows]).execute();
}

export interface OutboxStats {
  readonly pending: number;
  /** created_at of the oldest row still owed; null when none is. */
  readonly oldestAt: number | null;
}

export class KyselyOutbox implements EventSink {
  readonly #db: Kysely<Database>;
  readonly #rows: OutboxRows;
  readonly #written = new Set<() => void>();

  constructor(db: Kysely<Database>, rows: OutboxRows) {
    this.#db = db;
    this.#rows = rows;
  }

  get enabled(): boolean {
    return this.#rows.enabled;
  }

  /** Writes the events' rows before resolving; wakes this node's worker. */
  async emit(events: readonly DomainEvent[]): Promise<void> {
    const rows = this.#rows.rows(events);
    if (rows.length === 0) return;
    await guard(insertOutboxRows(this.#db, rows));
    this.notifyWritten();
  }

  /** Called after rows were written (here or in an account change's transaction). */
  notifyWritten(): void {
    for (const listener of this.#written) listener();
  }

  onWritten(listener: () => void): () => void {
    this.#written.add(listener);
    return () => this.#written.delete(listener);
  }

  /**
   * Leases up to `limit` due rows, each the oldest row of its (webhook, user): a later row of a user
   * is never handed out while an earlier one is owed, leased or not. The UPDATE re-checks the lease
   * on the row it writes (PostgreSQL re-evaluates it after waiting for a concurrent claimer's lock;
   * SQLite runs the statement under its one write lock), so two workers never both get a row.
   */
  claim(webhooks: readonly string[], now: number, leaseMs: number, limit: number): Promise<OutboxRow[]> {
    if (webhooks.length === 0) return Promise.resolve([]);
    return guard(
      this.#db
        .updateTable('webhook_outbox')
        .set({ leased_until: now + leaseMs })
        .where('leased_until', '<=', now)
        .where('id', 'in', (eb) =>
          eb.selectFrom('webhook_outbox as o').select('o.id')
            .where('o.webhook', 'in', [...webhooks])
            .where('o.next_at', '<=', now)
            .where('o.leased_until', '<=', now)
            .where(({ not, exists, selectFrom }) => not(exists(
              selectFrom('webhook_outbox as p').select('p.id')
                .whereRef('p.webhook', '=', 'o.webhook').whereRef('p.uid', '=', 'o.uid').whereRef('p.id', '<', 'o.id'),
            )))
            .orderBy('o.id')
            .limit(limit))
        .returningAll()
        .execute(),
    );
  }

  /** Delivered (or dropped): the row is owed no more. */
  async remove(id: number): Promise<void> {
    await guard(this.#db.deleteFrom('webhook_outbox').where('id', '=', id).execute());
  }

  /** A failed attempt: free the row again, not before `nextAt`. */
  async retryAt(id: number, attempts: number, nextAt: number): Promise<void> {
    await guard(this.#db.updateTable('webhook_outbox').set({ attempts, next_at: nextAt, leased_until: 0 }).where('id', '=', id).execute());
  }

  async stats(webhooks: readonly string[]): Promise<OutboxStats> {
    if (webhooks.length === 0) return { pending: 0, oldestAt: null };
    const row = await guard(
      this.#db.selectFrom('webhook_outbox')
        .select((eb) => [eb.fn.countAll<number>().as('pending'), eb.fn.min<number | null>('created_at').as('oldest')])
        .where('webhook', 'in', [...webhooks])
        .executeTakeFirstOrThrow(),
    );
    return { pending: Number(row.pending), oldestAt: row.oldest === null ? null : Number(row.oldest) };
  }
}

