/**
 * The load generator: autocannon, in the benchmark's own process (the server under test runs in
 * a child process, so the two never share an event loop). Each request carries the next token of
 * the pool, so the server looks up a different session on every request.
 */
import autocannon, { type AutocannonRequest, type AutocannonResult } from 'autocannon';

export interface LoadOptions {
  readonly url: string;
  readonly path: string;
  /** Tokens to rotate through in the `token` header; none for the bare route. */
  readonly tokens: readonly string[];
  readonly connections: number;
  readonly durationSeconds: number;
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
  const request: AutocannonRequest = { method: 'GET', path: options.path };
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
