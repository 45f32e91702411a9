/**
 * The requester's side of a QR login (browser or desktop): create the request, then long-poll its
 * status with the poll secret that only it holds.
 */
import { notFound } from '../../core/errors.ts';
import { qrImage, type QrImage } from './qr-image.ts';
import { deriveAuthCode, hashSecret, matchesHash, newPollSecret, newRequestId } from './secrets.ts';
import { recordKey, statusChannel, storeTtlMs, visibleStatus, type QrRecord, type QrStatus, type Requester } from './record.ts';
import { readQrRecord } from './transition.ts';
import { waitForStatus } from './status-wait.ts';
import type { QrFlowDeps } from './deps.ts';

export interface CreatedLoginRequest {
  readonly uuid: string;
  readonly qrcode: QrImage;
  readonly poll_secret: string;
  readonly expires_at: number;
}

export async function createLoginRequest(deps: QrFlowDeps, requester: Requester): Promise<CreatedLoginRequest> {
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
  };
  // NX: a uuid names one request, ever.
  if (!(await deps.kv.set(recordKey(uuid), JSON.stringify(record), { nx: true, ttlMs: storeTtlMs(record, now) }))) {
    throw new Error('QR request id collision');
  }
  return { uuid, qrcode: await qrImage(uuid), poll_secret: pollSecret, expires_at: record.expires_at };
}

/** What the poller sees: never the scanner, and the auth code only once approved. */
export interface LoginStatusView {
  readonly status: QrStatus;
  readonly auth_code?: string;
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
}

const FINAL: ReadonlySet<QrStatus> = new Set(['authed', 'rejected', 'expired']);

/**
 * Long-poll. Without the right poll secret the answer is 404, exactly as for an unknown uuid: the
 * uuid is in the QR on screen, so knowing it must not let anyone watch the request or collect its
 * code (spec §7.2). Without `lastStatus` the poll waits for a change from the status it finds.
 */
export async function pollLoginStatus(deps: QrFlowDeps, input: PollInput): Promise<LoginStatusView> {
  const first = await readQrRecord(deps.kv, input.uuid);
  const pollSecret = input.pollSecret;
  if (first === null || pollSecret === undefined || !matchesHash(pollSecret, first.poll_secret_hash)) throw notFound('login request');
  const baseline = input.lastStatus ?? visibleStatus(first, deps.clock.now());
  const observed = await waitForStatus<Observed>({
    kv: deps.kv,
    clock: deps.clock,
    channel: statusChannel(input.uuid),
    read: () => observe(deps, input.uuid, pollSecret),
    settled: ({ view }) => FINAL.has(view.status) || view.status !== baseline,
    lapsesAt: ({ lapsesAt }) => lapsesAt,
    timeoutMs: deps.config.qr.pollTimeoutSeconds * 1000,
    signal: input.signal,
  });
  return observed.view;
}

async function observe(deps: QrFlowDeps, uuid: string, pollSecret: string): Promise<Observed> {
  const record = await readQrRecord(deps.kv, uuid);
  if (record === null) return { view: { status: 'expired' }, lapsesAt: null };
  const status = visibleStatus(record, deps.clock.now());
  const lapsesAt = status === 'waitScan' || status === 'scanned' || status === 'authed' ? record.expires_at : null;
  if (status !== 'authed') return { view: { status }, lapsesAt };
  // An approval without a nonce (a record from before codes were derived) has nothing to collect.
  if (record.code_nonce === null) return { view: { status: 'expired' }, lapsesAt: null };
  return { view: { status, auth_code: deriveAuthCode(pollSecret, uuid, record.code_nonce) }, lapsesAt };
}
