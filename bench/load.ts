/**
 * The load generator: autocannon, in the benchmark's own process (the server under test runs in
 * a child process, so the two never share an event loop). Each request carries the next token of
 * the pool, so the server looks up a different session on every request.
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
  const result: AutocannonResult = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.durationSeconds,
    ...(options.amount === undefined ? {} : { amount: options.amount }),
    requests: [request],
    timeout: 10,
  });
  return {
    requestsPerSecond: result['2xx'] / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, { count }]) => [code, count])),
    durationSeconds: result.duration,
  };
}

/** A measurement that counted a single failed answer is not a measurement: a 401 is never throughput. */
export function assertAllSucceeded(what: string, result: LoadResult): void {
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0 || result.ok === 0) {
    throw new Error(`${what}: ${result.non2xx} non-2xx answers (${JSON.stringify(result.statusCodes)}), ` +
      `${result.errors} errors, ${result.timeouts} timeouts — not a valid measurement`);
  }
}
