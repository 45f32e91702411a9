/**
 * The load generator: autocannon, in the benchmark's own process (the server under test runs in
 * a child process, so the two never share an event loop). Each request carries the next token of
 * the pool (or, for a cookie-session peer, the next Cookie header), so the server looks up a
 * different session on every request.
 */
import autocannon, { type AutocannonRequest, type AutocannonResult } from 'autocannon';

export interface LoadOptions {
  readonly url: string;
  readonly path: string;
  /** GET unless told. */
  readonly method?: 'GET' | 'POST';
  /** A JSON body sent with every request. */
  readonly body?: unknown;
  /** Tokens to rotate through in the `token` header; none for the bare route. */
  readonly tokens: readonly string[];
  /** Cookie headers to rotate through instead, for servers whose sessions ride in cookies. */
  readonly cookies?: readonly string[];
  /**
   * For servers that answer a failed check with 200 (better-auth's get-session answers `null`):
   * every answer's body must pass, and one that does not is a mismatch, never throughput.
   */
  readonly verifyBody?: (body: string) => boolean;
  readonly connections: number;
  readonly durationSeconds: number;
  /** Send exactly this many requests instead of running for durationSeconds. */
  readonly amount?: number;
}

export interface LoadResult {
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly ok: number;
  readonly non2xx: number;
  /** Answers whose body failed verifyBody (absent where no body was checked). */
  readonly mismatches?: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly statusCodes: Record<string, number>;
  readonly durationSeconds: number;
}

export async function generateLoad(options: LoadOptions): Promise<LoadResult> {
  const request: AutocannonRequest = { method: options.method ?? 'GET', path: options.path };
  if (options.body !== undefined) {
    request.body = JSON.stringify(options.body);
    request.headers = { 'content-type': 'application/json' };
  }
  const { tokens } = options;
  if (tokens.length > 0) {
    let next = 0;
    request.setupRequest = (built) => {
      const token = tokens[next % tokens.length] ?? '';
      next += 1;
      return { ...built, headers: { ...built.headers, token } };
    };
  }
  const cookies = options.cookies ?? [];
  if (cookies.length > 0) {
    let next = 0;
    request.setupRequest = (built) => {
      const cookie = cookies[next % cookies.length] ?? '';
      next += 1;
      return { ...built, headers: { ...built.headers, cookie } };
    };
  }
  const result: AutocannonResult = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.durationSeconds,
    ...(options.amount === undefined ? {} : { amount: options.amount }),
    requests: [request],
    timeout: 10,
    ...(options.verifyBody === undefined ? {} : { verifyBody: options.verifyBody }),
  });
  // autocannon counts a mismatched answer in its status class as well: it is not a success.
  const mismatches = result.mismatches ?? 0;
  const ok = Math.max(0, result['2xx'] - mismatches);
  return {
    requestsPerSecond: ok / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    ok,
    non2xx: result.non2xx,
    mismatches,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, { count }]) => [code, count])),
    durationSeconds: result.duration,
  };
}

/** A measurement that counted a single failed answer is not a measurement: a 401 is never throughput. */
export function assertAllSucceeded(what: string, result: LoadResult): void {
  if (result.non2xx > 0 || (result.mismatches ?? 0) > 0 || result.errors > 0 || result.timeouts > 0 || result.ok === 0) {
    throw new Error(`${what}: ${result.non2xx} non-2xx answers (${JSON.stringify(result.statusCodes)}), ` +
      `${result.mismatches ?? 0} answers without the expected body, ${result.errors} errors, ${result.timeouts} timeouts ` +
      '— not a valid measurement');
  }
}
