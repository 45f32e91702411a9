import type { Kv } from '../../ports/kv.ts';
import type { Clock } from '../../ports/clock.ts';
import { LatchkeyError, notFound } from '../../core/errors.ts';
import { parseQrRecord, recordKey, statusChannel, storeTtlMs, type QrRecord } from './record.ts';

/**
 * Decides the next record from the current one: a new record to write, `null` for "nothing to
 * change" (an idempotent repeat), or a thrown LatchkeyError for a refused step.
 */
export type QrStep = (current: QrRecord, now: number) => Omit<QrRecord, 'version'> | null;

export interface Transitioned {
  readonly record: QrRecord;
  /** False when the step found nothing to change. */
  readonly changed: boolean;
}

/** Only forward moves exist (waitScan, scanned, authed|rejected, consumed), so retries are few. */
const MAX_ATTEMPTS = 16;

/**
 * Read, compute, compare-and-set the whole value; on a lost race read again and recompute, so a
 * step always decides on the record as it is now (two scanners, approve racing reject, fifty
 * exchanges of one code: exactly one write wins, the others see its result). Publishes a wake-up
 * for the pollers after every change.
 */
export async function transition(kv: Kv, clock: Clock, uuid: string, step: QrStep): Promise<Transitioned> {
  const key = recordKey(uuid);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
    const raw = await kv.get(key);
    const current = raw === null ? null : parseQrRecord(raw);
    if (raw === null || current === null) throw notFound('login request');
    const now = clock.now();
    const next = step(current, now);
    if (next === null) return { record: current, changed: false };
    const record: QrRecord = { ...next, version: current.version + 1 };
    if (await kv.compareAndSet(key, raw, JSON.stringify(record), { ttlMs: storeTtlMs(record, now) })) {
      // The change is made; a lost wake-up only delays pollers until their next re-read.
      await kv.publish(statusChannel(uuid), String(record.version)).catch(() => {});
      return { record, changed: true };
    }
  }
  throw new LatchkeyError('conflict', 'the login request is changing too fast; try again');
}

/** The record as stored, or null when unknown (never created, or long gone). */
export async function readQrRecord(kv: Kv, uuid: string): Promise<QrRecord | null> {
  const raw = await kv.get(recordKey(uuid));
  return raw === null ? null : parseQrRecord(raw);
}
