/**
 * Every error latchkey can return, in one place: a stable `code` clients switch on, and its HTTP
 * status (docs/api.md §3). Core code throws these; the HTTP layer only renders them.
 */
export const errorStatus = {
  invalid_request: 400,
  unauthorized: 401,
  invalid_credentials: 401,
  forbidden: 403,
  account_disabled: 403,
  not_found: 404,
  payload_too_large: 413,
  unsupported_media_type: 415,
  conflict: 409,
  session_limit: 409,
  expired: 410,
  rate_limited: 429,
  /** The action needs a factor proven within `step_up_seconds` (flows/mfa/step-up.ts). */
  step_up_required: 403,
  internal_error: 500,
  upstream_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof errorStatus;

export class LatchkeyError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;
  /** Seconds, for rate_limited and upstream_unavailable (sent as Retry-After). */
  readonly retryAfter: number | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, retryAfter?: number) {
    super(message);
    this.name = 'LatchkeyError';
    this.code = code;
    this.status = errorStatus[code];
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

export const invalidRequest = (field: string, message: string): LatchkeyError =>
  new LatchkeyError('invalid_request', message, { field });
/** `ended`: why the token's session ended, when it is known (core/sessions/tombstone.ts). */
export const unauthorized = (ended?: { readonly reason: string; readonly ended_at: number }): LatchkeyError =>
  ended === undefined
    ? new LatchkeyError('unauthorized', 'a valid session token is required')
    : new LatchkeyError('unauthorized', `this session has ended (${ended.reason})`, { ...ended });
export const invalidCredentials = (): LatchkeyError =>
  new LatchkeyError('invalid_credentials', 'wrong username or password');
export const accountDisabled = (): LatchkeyError =>
  new LatchkeyError('account_disabled', 'this account is disabled');
export const notFound = (what: string): LatchkeyError => new LatchkeyError('not_found', `${what} not found`);
export const forbidden = (message: string): LatchkeyError => new LatchkeyError('forbidden', message);
export const rateLimited = (retryAfterSeconds: number): LatchkeyError =>
  new LatchkeyError('rate_limited', 'too many requests, try again later', undefined, retryAfterSeconds);
export const busy = (what: string, retryAfterSeconds: number): LatchkeyError =>
  new LatchkeyError('upstream_unavailable', `${what} is busy; try again shortly`, undefined, retryAfterSeconds);
/** A `reject_new` session limit is full (docs/api.md §3): the login left nothing behind. */
export const sessionLimitReached = (limit: { readonly flags: readonly number[]; readonly max: number }): LatchkeyError =>
  new LatchkeyError('session_limit', `at most ${limit.max} sessions of device flags ${limit.flags.join(', ')} may be live at once; end one first`, {
    limit: { flags: [...limit.flags], max: limit.max },
  });
