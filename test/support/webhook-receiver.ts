/**
 * A webhook receiver on 127.0.0.1 for tests: checks every delivery's signature with the
 * standardwebhooks package, answers what the test says (or is down: connection refused), and keeps
 * what it was sent.
 */
import { createServer, type Server } from 'node:http';
import { Webhook } from 'standardwebhooks';

export const TEST_WEBHOOK_SECRET = `whsec_${Buffer.alloc(32, 42).toString('base64')}`;

export interface Delivery {
  readonly id: string;
  readonly type: string;
  /** Event time (ms), from the body's ISO timestamp. */
  readonly at: number;
  readonly data: Record<string, any>;
  /** What the receiver answered. */
  readonly status: number;
}

export interface Receiver {
  readonly url: string;
  /** Every delivery whose signature verified, in arrival order, with the answer given. */
  readonly deliveries: Delivery[];
  /** Deliveries whose signature did NOT verify (answered 400). */
  readonly badSignatures: string[];
  /** Accepted (2xx) deliveries only. */
  accepted(): Delivery[];
  /** Holds every answer (requests stay in flight) until the returned function is called. */
  stall(): () => void;
  /** Stops listening (connections are refused) until up() is called. */
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
  /** Resolves once `done` holds over the accepted deliveries (checked after each delivery). */
  until(done: (accepted: Delivery[]) => boolean, timeoutMs: number): Promise<void>;
}

/**
 * `answer(n)` gives the status for the n-th verified delivery (0-based); 204 by default. `delayMs`:
 * how long each answer takes (deliveries stay in flight, so a killed node is likely mid-delivery).
 */
export async function startReceiver(answer: (n: number) => number = () => 204, secret = TEST_WEBHOOK_SECRET, delayMs = 0): Promise<Receiver> {
  const verifier = new Webhook(secret);
  const deliveries: Delivery[] = [];
  const badSignatures: string[] = [];
  const waiters = new Set<() => void>();
  let answered = 0;
  /** While set, answers wait for it (deliveries pile up in flight). */
  let stalled: Promise<void> | null = null;
  const handler = (request: import('node:http').IncomingMessage, response: import('node:http').ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const headers = request.headers as Record<string, string>;
      try {
        verifier.verify(raw, headers);
      } catch (error) {
        badSignatures.push(`${headers['webhook-id']}: ${String(error)}`);
        response.writeHead(400).end();
        return;
      }
      const body = JSON.parse(raw) as { type: string; timestamp: string; data: Record<string, unknown> };
      const status = answer(answered++);
      const respond = () => {
        deliveries.push({ id: headers['webhook-id'] ?? '', type: body.type, at: Date.parse(body.timestamp), data: body.data, status });
        response.writeHead(status).end();
        for (const waiter of waiters) waiter();
      };
      if (stalled !== null) void stalled.then(respond);
      else if (delayMs > 0) setTimeout(respond, delayMs);
      else respond();
    });
  };
  let server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const stop = () => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  const accepted = () => deliveries.filter((d) => d.status >= 200 && d.status < 300);
  return {
    url: `http://127.0.0.1:${port}/events`,
    deliveries,
    badSignatures,
    accepted,
    down: stop,
    stall() {
      let release = () => {};
      stalled = new Promise((resolve) => {
        release = () => {
          stalled = null;
          resolve();
        };
      });
      return release;
    },
    async up() {
      server = createServer(handler);
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    },
    close: stop,
    until(done, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!done(accepted())) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`webhook receiver: not done after ${timeoutMs} ms (${accepted().length} accepted)`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}
