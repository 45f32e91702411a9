/**
 * Events other backends are told about by webhook (docs/api.md §13, docs/design.md §3.6): what
 * happened to a user or a session. An event is written to the outbox (adapters/db/outbox.ts) in the
 * same step as the change it reports and delivered later, by any node, at least once and in order
 * per user.
 */

export type EventType =
  | 'session.created'
  | 'session.ended'
  | 'user.created'
  | 'user.banned'
  | 'user.unbanned'
  | 'user.password_changed'
  | 'user.role_changed';

export const EVENT_TYPES: readonly EventType[] = [
  'session.created', 'session.ended', 'user.created', 'user.banned', 'user.unbanned', 'user.password_changed', 'user.role_changed',
];

/** One event as a flow reports it; `data.uid` is always the user it is about (the order key). */
export interface DomainEvent {
  readonly type: EventType;
  readonly data: { readonly uid: string } & Readonly<Record<string, unknown>>;
}

/**
 * Where flows report events that are not part of an account-database change of their own (sessions
 * live in the session store). `emit` writes them durably before it resolves; with no webhook
 * configured it does nothing at all.
 */
export interface EventSink {
  /** False when no webhook is configured: callers may skip building events. */
  readonly enabled: boolean;
  emit(events: readonly DomainEvent[]): Promise<void>;
}

export const NO_EVENTS: EventSink = { enabled: false, emit: async () => {} };
