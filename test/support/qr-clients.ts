/**
 * The two sides of a QR login, as HTTP clients: the signed-in app (a session token) and the
 * browser (a login request with its poll secret). Each takes the node it talks to, so the two
 * sides can be on different latchkey nodes.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { Kv, KvMessageHandler } from '../../src/ports/kv.ts';
import { statusChannel } from '../../src/flows/qr/record.ts';
import { call, type Answer } from './server.ts';

export interface Node {
  readonly url: string;
}

export interface AppUser {
  readonly uid: string;
  readonly token: string;
}

export interface BrowserRequest {
  readonly uuid: string;
  readonly poll_secret: string;
  readonly qrcode: { readonly svg: string; readonly text: string };
  readonly expires_at: number;
}

export const browserDevice = { device_id: 'browser-1', device_name: 'Firefox on Linux', device_model: 'Firefox 140' } as const;

/** Registers an account on the APP flag (the phone that will scan). */
export async function registerApp(node: Node, username: string): Promise<AppUser> {
  const answer = await call(node, 'POST', '/v1/user/register', {
    username, password: 'correct horse', flag: 0, device: { device_id: `${username}-phone`, device_name: 'Phone', device_model: 'Pixel' },
  });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return { uid: answer.body.uid, token: answer.body.token };
}

export async function loginRequest(node: Node, flag = 1): Promise<BrowserRequest> {
  const query = new URLSearchParams({ flag: String(flag), ...browserDevice });
  const answer = await call(node, 'GET', `/v1/user/loginuuid?${query}`);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body as BrowserRequest;
}

export interface Polled extends Answer {
  /** Milliseconds from the call to the answer. */
  readonly tookMs: number;
  /** When the answer arrived (performance.now()). */
  readonly at: number;
}

export async function poll(node: Node, uuid: string, pollSecret: string | undefined, lastStatus?: string): Promise<Polled> {
  const query = new URLSearchParams({ uuid });
  if (pollSecret !== undefined) query.set('poll_secret', pollSecret);
  if (lastStatus !== undefined) query.set('last_status', lastStatus);
  const started = performance.now();
  const answer = await call(node, 'GET', `/v1/user/loginstatus?${query}`);
  const at = performance.now();
  return { ...answer, tookMs: at - started, at };
}

export const scan = (node: Node, app: AppUser, uuid: string): Promise<Answer> =>
  call(node, 'POST', `/v1/user/qrcode/${uuid}/scan`, undefined, app.token);

export const grant = (node: Node, app: AppUser, uuid: string, approve: boolean): Promise<Answer> =>
  call(node, 'POST', '/v1/user/grant_login', { uuid, approve }, app.token);

export const exchange = (node: Node, authCode: string, uuid: string, pollSecret: string): Promise<Answer> =>
  call(node, 'POST', `/v1/user/login_authcode/${authCode}`, { uuid, poll_secret: pollSecret });

/** Far beyond any stall of a loaded machine: only a poll that never gets there takes this long. */
const WAITING_WITHIN_MS = 30_000;

/** Polls `condition` until it holds; fails after a deadline no healthy run comes near. */
export async function until(what: string, condition: () => boolean | Promise<boolean>, withinMs = WAITING_WITHIN_MS): Promise<void> {
  const deadline = performance.now() + withinMs;
  while (!(await condition())) {
    if (performance.now() > deadline) assert.fail(`${what}: not within ${withinMs} ms`);
    await sleep(10);
  }
}

/**
 * How many long-polls are waiting on each login request: a poll waits on its request's wake-up
 * channel once it has read the status it waits to change from. A scan made before that is the
 * status a late poll starts from, and it sits out its whole timeout instead of answering at the scan.
 */
export interface WaitingPolls {
  /** Subscribers to the request's wake-up channel now. */
  count(uuid: string): Promise<number>;
  /** Resolves once at least `wanted` are subscribed. */
  atLeast(uuid: string, wanted: number, withinMs?: number): Promise<void>;
  /** Resolves once none is subscribed any more. */
  none(uuid: string, withinMs?: number): Promise<void>;
}

function waitingPolls(count: (uuid: string) => Promise<number>): WaitingPolls {
  return {
    count,
    atLeast: (uuid, wanted, withinMs) => until(`${wanted} polls waiting on ${uuid}`, async () => (await count(uuid)) >= wanted, withinMs),
    none: (uuid, withinMs) => until(`no poll waiting on ${uuid}`, async () => (await count(uuid)) === 0, withinMs),
  };
}

/**
 * Counts the subscriptions an in-process node makes on its store, by wrapping the store's
 * `subscribe` (the node's flows call it through the same object). Call before the polls start.
 */
export function waitingPollsOf(kv: Kv): WaitingPolls {
  const live = new Map<string, number>();
  const add = (channel: string, delta: number): void => {
    live.set(channel, (live.get(channel) ?? 0) + delta);
  };
  const subscribe = kv.subscribe.bind(kv);
  Object.defineProperty(kv, 'subscribe', {
    configurable: true,
    value: async (channel: string, handler: KvMessageHandler): Promise<() => Promise<void>> => {
      const unsubscribe = await subscribe(channel, handler);
      add(channel, 1);
      let ended = false;
      return async () => {
        await unsubscribe();
        if (!ended) add(channel, -1);
        ended = true;
      };
    },
  });
  return waitingPolls(async (uuid) => live.get(statusChannel(uuid)) ?? 0);
}

/**
 * The same for nodes in other processes sharing one Redis: PUBSUB NUMSUB counts each node's
 * subscriber connection once, however many polls it holds on the channel.
 */
export async function waitingPollsOnRedis(url: string, prefix: string): Promise<WaitingPolls & { close(): void }> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  const polls = waitingPolls(async (uuid) => {
    const [, subscribers] = (await redis.pubsub('NUMSUB', prefix + statusChannel(uuid))) as [string, number];
    return Number(subscribers);
  });
  return { ...polls, close: () => redis.disconnect() };
}
