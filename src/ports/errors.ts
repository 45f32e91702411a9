/**
 * A store (Kv or database) is unreachable or did not answer in time. Callers cannot know whether the
 * operation happened; the HTTP layer answers 503 `upstream_unavailable` instead of hanging or 500.
 */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
