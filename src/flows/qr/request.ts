/**
 * The requester's side of a QR login (browser or desktop): create the request, then long-poll its
 * status with the poll secret that only it holds.
 */
import { notFound, rateLimited } from '../../core/errors.ts';
import { qrImage, type QrImage } from './qr-image.ts';
import { deriveAuthCode, hashSecret, matchesHash, newPollSecret, newRequestId } from './secrets.ts';
import { recordKey, statusChannel, storeTtlMs, visibleStatus, type LegacyBinding, type QrRecord, type QrStatus, type Requester } from './record.ts';
import { readQrRecord } from './transition.ts';
import { waitForStatus } from './status-wait.ts';
import type { PollSlots } from './poll-slots.ts';
import type { QrFlowDeps } from './deps.ts';

export interface CreatedLoginRequest {
  readonly uuid: string;
  readonly qrcode: QrImage;
  readonly poll_secret: string;
  readonly expires_at: number;
}

export async function createLoginRequest(
  deps: QrFlowDeps,
  requester: Requester,
  scanUrlPrefix?: string,
  legacy?: LegacyBinding['binding'],
): Promise<CreatedLoginRequest> {
  const uuid = newRequestId(deps.random);
  const pollSecret = newPollSecret(deps.random);
  const now = deps.clock.now();
  const record: QrRecord = {
    version: 1,
    status: 'waitScan',
    requester,
    poll_secret_hash: hashSecret(pollSecret),
    scanner_uid: null,
    scanner_sid: null,
    password_stamp: null,
    code_nonce: null,
    created_at: now,
    expires_at: now + deps.config.qr.requestTtlSeconds * 1000,
    ...(legacy === undefined ? {} : { legacy: legacy === 'cookie' ? { binding: 'cookie' } : { binding: 'address', poll_secret: pollSecret } }),
  };
  // NX: a uuid names one request, ever.
  if (!(await deps.kv.set(recordKey(uuid), JSON.stringify(record), { nx: true, ttlMs: storeTtlMs(record, now) }))) {
    throw new Error('QR request id collision');
  }
  return { uuid, qrcode: await qrImage(uuid, scanUrlPrefix), poll_secret: pollSecret, expires_at: record.expires_at };
}

/** What the poller sees: never the scanner, and the auth code only once approved. */
export interface LoginStatusView {
  readonly status: QrStatus;
  readonly auth_code?: string;
  /** compat.octo_qr only: the scanner's uid once scanned (the web client shows the avatar). */
  readonly uid?: string;
}

interface Observed {
  readonly view: LoginStatusView;
  readonly lapsesAt: number | null;
}

export interface PollInput {
  readonly uuid: string;
  readonly pollSecret: string | undefined;
  /** The status the poller last saw; the poll answers as soon as the status differs from it. */
  readonly lastStatus: QrStatus | undefined;
  readonly signal: AbortSignal;
  /** The caller's address and this node's long-poll slots: a poll is held only within the caps. */
  readonly clientIp: string;
  readonly slots: PollSlots;
  /** compat.octo_qr: `scanned` names the scanner's uid, as octo-server's did. */
  readonly showScanner?: boolean;
}

const FINAL: ReadonlySet<QrStatus> = new Set(['authed', 'rejected', 'expired']);
/** A refused poll's Retry-After: slots free as held polls answer, at most `poll_timeout_seconds` on. */
const POLL_RETRY_AFTER_SECONDS = 1;

/**
 * Long-poll. Without the right poll secret the answer is 404, exactly as for an unknown uuid: the
 * uuid is in the QR on screen, so knowing it must not let anyone watch the request or collect its
 * code (docs/octo-server.md §8.2). Without `lastStatus` the poll waits for a change from the status it finds.
 * Past the per-address or per-request cap of held polls (poll-slots.ts) it is refused at once with
 * 429 and Retry-After rather than answered early: an early answer would invite an immediate re-poll,
 * turning the held socket into a busy loop.
 */
export async function pollLoginStatus(deps: QrFlowDeps, input: PollInput): Promise<LoginStatusView> {
  const first = await readQrRecord(deps.kv, input.uuid);
  const pollSecret = input.pollSecret;
  if (first === null || pollSecret === undefined || !matchesHash(pollSecret, first.poll_secret_hash)) throw notFound('login request');
  const found = visibleStatus(first, deps.clock.now());
  const baseline = input.lastStatus ?? found;
  const settled = (status: QrStatus): boolean => FINAL.has(status) || status !== baseline;
  // News is answered at once and holds nothing, so the cap below never delays an answer.
  if (settled(found)) return (await observe(deps, input.uuid, pollSecret, input.showScanner === true)).view;
  const release = input.slots.take(input.clientIp, input.uuid);
  if (release === null) throw rateLimited(POLL_RETRY_AFTER_SECONDS);
  try {
    const observed = await waitForStatus<Observed>({
      kv: deps.kv,
      clock: deps.clock,
      channel: statusChannel(input.uuid),
      read: () => observe(deps, input.uuid, pollSecret, input.showScanner === true),
      settled: ({ view }) => settled(view.status),
      lapsesAt: ({ lapsesAt }) => lapsesAt,
      timeoutMs: deps.config.qr.pollTimeoutSeconds * 1000,
      signal: input.signal,
    });
    return observed.view;
  } finally {
    release();
  }
}

async function observe(deps: QrFlowDeps, uuid: string, pollSecret: string, showScanner: boolean): Promise<Observed> {
  const record = await readQrRecord(deps.kv, uuid);
  if (record === null) return { view: { status: 'expired' }, lapsesAt: null };
  const status = visibleStatus(record, deps.clock.now());
  const lapsesAt = status === 'waitScan' || status === 'scanned' || status === 'authed' ? record.expires_at : null;
  if (status === 'scanned' && showScanner && record.scanner_uid !== null) return { view: { status, uid: record.scanner_uid }, lapsesAt };
  if (status !== 'authed') return { view: { status }, lapsesAt };
  // An approval without a nonce (a record from before codes were derived) has nothing to collect.
  if (record.code_nonce === null) return { view: { status: 'expired' }, lapsesAt: null };
  return { view: { status, auth_code: deriveAuthCode(pollSecret, uuid, record.code_nonce) }, lapsesAt };
}
