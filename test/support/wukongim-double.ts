/**
 * A faithful stand-in for WuKongIM's HTTP API (it cannot run here), on a loopback port. It answers
 * the two calls latchkey makes the way WuKongIM does (docs/octo-server.md §3; WuKongIM internal/api/user.go):
 * - `POST /user/token {uid, token, device_flag, device_level}`: stores ONE token per (uid, flag); a
 *   Master update (level 1) kicks the connections already open on that (uid, flag), a Slave update
 *   (0) only replaces the token; a banned user gets HTTP 200 `{"status":19}`; a system uid, an empty
 *   uid or token, a flag outside 0-2 or a level outside 0-1 is a 400.
 * - `POST /user/device_quit {uid, device_flag}`: clears the stored token of that flag (-1: every
 *   flag), so it no longer connects, and kicks its connections; always 200 for a valid body.
 * - Both need header `token` = the manager token when one is configured (401 otherwise).
 * Clients' IM connections are simulated with connect(): it succeeds only with the stored token, and
 * the double records which connections a Master update or a device_quit kicks. It can be told to
 * answer an error status, to reset connections (unreachable), or to hang, and to recover.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export type KickReason = 'master_update' | 'device_quit';

export interface ImConnection {
  readonly id: number;
  readonly uid: string;
  readonly flag: number;
  readonly token: string;
  /** Why WuKongIM dropped it, or null while it is open. */
  kickedBy: KickReason | null;
}

export interface ImCall {
  readonly path: string;
  readonly body: Record<string, unknown>;
  /** What the double answered (0: it hung or reset the connection). */
  readonly status: number;
}

export type FailureMode = { readonly kind: 'status'; readonly status: number } | { readonly kind: 'reset' } | { readonly kind: 'hang' };

/** WuKongIM refuses to update the token of its system accounts. */
const SYSTEM_UIDS = new Set(['u_10000', 'fileHelper']);
const FLAGS = [0, 1, 2] as const;

export class WukongImDouble {
  readonly url: string;
  /** Every call that reached it, in order. */
  readonly calls: ImCall[] = [];
  readonly #server: Server;
  readonly #managerToken: string | undefined;
  readonly #tokens = new Map<string, string>();
  readonly #connections: ImConnection[] = [];
  readonly #banned = new Set<string>();
  readonly #hanging = new Set<ServerResponse>();
  readonly #sockets = new Set<Socket>();
  #failure: FailureMode | null = null;
  #nextId = 1;

  private constructor(server: Server, url: string, managerToken: string | undefined) {
    this.#server = server;
    this.url = url;
    this.#managerToken = managerToken;
  }

  static async start(options: { managerToken?: string } = {}): Promise<WukongImDouble> {
    let double: WukongImDouble | null = null;
    const server = createServer((request, response) => {
      if (double !== null) double.#handle(request, response);
    });
    server.on('connection', (socket) => {
      if (double === null) return;
      const sockets = double.#sockets;
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    double = new WukongImDouble(server, `http://127.0.0.1:${port}`, options.managerToken);
    return double;
  }

  /** The token WuKongIM holds for (uid, flag): undefined if never set, '' after a device_quit. */
  tokenOf(uid: string, flag: number): string | undefined {
    return this.#tokens.get(slot(uid, flag));
  }

  /** A client opens its IM connection; null when WuKongIM would refuse the token. */
  connect(uid: string, flag: number, token: string): ImConnection | null {
    const stored = this.#tokens.get(slot(uid, flag));
    if (stored === undefined || stored === '' || stored !== token) return null;
    const connection: ImConnection = { id: this.#nextId++, uid, flag, token, kickedBy: null };
    this.#connections.push(connection);
    return connection;
  }

  /** The user's person channel is banned: /user/token answers status 19. */
  ban(uid: string): void {
    this.#banned.add(uid);
  }

  /** From now on every call fails this way, until recover(). */
  fail(mode: FailureMode): void {
    this.#failure = mode;
  }

  /** Answers normally again; calls left hanging are cut off (their callers have timed out by then). */
  recover(): void {
    this.#failure = null;
    for (const response of this.#hanging) response.destroy();
    this.#hanging.clear();
  }

  /** Calls to one path, e.g. `/user/device_quit`. */
  callsTo(path: string): ImCall[] {
    return this.calls.filter((call) => call.path === path);
  }

  async close(): Promise<void> {
    this.recover();
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(request: IncomingMessage, response: ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const path = (request.url ?? '').split('?')[0] ?? '';
      let body: Record<string, unknown> = {};
      try {
        const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
        if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
      } catch {
        // answered as a bad request below
      }
      const failure = this.#failure;
      if (failure?.kind === 'reset') {
        this.calls.push({ path, body, status: 0 });
        request.socket.destroy();
        return;
      }
      if (failure?.kind === 'hang') {
        this.calls.push({ path, body, status: 0 });
        this.#hanging.add(response);
        return;
      }
      const [status, answer] = failure?.kind === 'status'
        ? [failure.status, { msg: 'injected failure', status: failure.status }]
        : this.#answer(request, path, body);
      this.calls.push({ path, body, status });
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
  }

  #answer(request: IncomingMessage, path: string, body: Record<string, unknown>): [number, Record<string, unknown>] {
    if (request.method !== 'POST') return [404, { msg: 'not found', status: 404 }];
    if (this.#managerToken !== undefined && request.headers.token !== this.#managerToken) {
      return [401, { msg: 'token验证失败', status: 401 }];
    }
    if (path === '/user/token') return this.#updateToken(body);
    if (path === '/user/device_quit') return this.#deviceQuit(body);
    return [404, { msg: 'not found', status: 404 }];
  }

  #updateToken(body: Record<string, unknown>): [number, Record<string, unknown>] {
    const { uid, token, device_flag: flag, device_level: level } = body;
    if (typeof uid !== 'string' || uid.trim() === '') return bad('uid不能为空！');
    if (typeof token !== 'string' || token.trim() === '') return bad('token不能为空！');
    if (typeof flag !== 'number' || !FLAGS.includes(flag as 0 | 1 | 2)) return bad('device_flag错误');
    if (level !== 0 && level !== 1) return bad('device_level错误');
    if (SYSTEM_UIDS.has(uid)) return bad('系统账号不允许更新token！');
    if (this.#banned.has(uid)) return [200, { status: 19 }];
    this.#tokens.set(slot(uid, flag), token);
    if (level === 1) this.#kick(uid, flag, 'master_update');
    return [200, { status: 200 }];
  }

  #deviceQuit(body: Record<string, unknown>): [number, Record<string, unknown>] {
    const { uid, device_flag: flag } = body;
    if (typeof uid !== 'string' || uid.trim() === '') return bad('uid不能为空！');
    if (typeof flag !== 'number' || (flag !== -1 && !FLAGS.includes(flag as 0 | 1 | 2))) return bad('device_flag错误');
    for (const each of flag === -1 ? FLAGS : [flag]) {
      // WuKongIM keeps the device with an empty token: reconnecting with the old one fails.
      if (this.#tokens.has(slot(uid, each))) this.#tokens.set(slot(uid, each), '');
      this.#kick(uid, each, 'device_quit');
    }
    return [200, { status: 200 }];
  }

  #kick(uid: string, flag: number, reason: KickReason): void {
    for (const connection of this.#connections) {
      if (connection.uid === uid && connection.flag === flag && connection.kickedBy === null) connection.kickedBy = reason;
    }
  }
}

function slot(uid: string, flag: number): string {
  return `${uid}\u0000${flag}`;
}

function bad(msg: string): [number, Record<string, unknown>] {
  return [400, { msg, status: 400 }];
}
