/**
 * How this node meets its clients over HTTP: the `http` section (timeouts and a connection cap,
 * so slow clients cannot hold the node) and `public_url` (the address browsers use, which decides
 * whether cookies are Secure). Validated at start.
 */
import { ConfigError, HIDDEN_VALUE } from './errors.ts';
import { int } from './values.ts';

export interface HttpConfig {
  /**
   * The whole request — headers and body — must arrive within this, or the client gets 408 and the
   * socket is closed: a body dripped a byte at a time held its socket (and descriptor) forever.
   * Time the server spends answering does not count, so the QR long-poll is not limited by it.
   */
  readonly requestTimeoutSeconds: number;
  /**
   * A connection with no bytes either way for this long, mid-request, is closed (a client that
   * stops reading its answer); must outlast the QR long-poll's wait and any upstream call's.
   */
  readonly idleTimeoutSeconds: number;
  /** Connections this node holds at once; past it a new one is closed at once, before it costs more. */
  readonly maxConnections: number;
}

type Json = Record<string, unknown>;

export function parseHttpConfig(value: unknown, pollTimeoutSeconds: number): HttpConfig {
  const http = value ?? {};
  if (http === null || typeof http !== 'object' || Array.isArray(http)) throw new ConfigError('http', 'an object', HIDDEN_VALUE);
  const raw = http as Json;
  // 120 s by default: an SSO callback may wait that long on a slow IdP (providers' timeout_seconds).
  const idleTimeoutSeconds = int(raw.idle_timeout_seconds, 'http.idle_timeout_seconds', Math.max(120, pollTimeoutSeconds + 30), 1, 3600);
  // A long-poll sends nothing while it waits: an idle timeout shorter than the wait would cut it.
  if (idleTimeoutSeconds <= pollTimeoutSeconds) {
    throw new ConfigError('http.idle_timeout_seconds', `more seconds than qr.poll_timeout_seconds (${pollTimeoutSeconds})`, idleTimeoutSeconds);
  }
  return {
    requestTimeoutSeconds: int(raw.request_timeout_seconds, 'http.request_timeout_seconds', 30, 1, 600),
    idleTimeoutSeconds,
    maxConnections: int(raw.max_connections, 'http.max_connections', 4096, 1, 1_000_000),
  };
}

/**
 * `public_url`: the origin browsers reach latchkey at, e.g. `https://login.example.com`. Behind a
 * TLS-terminating proxy the connection latchkey sees is plain http, so without it (and without
 * trust_proxy) cookies went out without Secure and without the `__Host-` prefix.
 */
export function parsePublicUrl(value: unknown): string | undefined {
  if (value === undefined || value === '') return undefined;
  const allowed = 'an http(s) origin such as https://login.example.com (no path, query or credentials)';
  const parsed = typeof value === 'string' ? URL.parse(value) : null;
  if (
    parsed === null || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') || parsed.username !== '' ||
    parsed.password !== '' || parsed.pathname !== '/' || parsed.search !== '' || parsed.hash !== ''
  ) {
    throw new ConfigError('public_url', allowed, value);
  }
  return parsed.origin;
}

