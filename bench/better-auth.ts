/**
 * better-auth as a target of the validate scenario: bench/better-auth-server.ts in its own child
 * process, on SQLite or with Redis as its secondary storage, with or without its cookie cache, and
 * a pool of session cookies made by real sign-ins of one user.
 *
 * better-auth's get-session answers 200 with `null` when it finds no session, so a 200 proves
 * nothing: every cookie's answer is read and checked (a session of the signed-up user) before the
 * load and after it, and during the load every body must start like a session (verifyBody).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHttpProcess, startRedisServer, type HttpProcess, type RedisServerProcess } from '../test/support/processes.ts';
import type { LoadTarget } from './measure.ts';
import { tearDown } from './server.ts';

/** Stores better-auth runs on here, matching latchkey's: SQLite alone, or Redis beside it. */
export type BetterAuthStore = 'sqlite' | 'redis';

export interface BetterAuthVariant {
  readonly store: BetterAuthStore;
  /** session.cookieCache.enabled: get-session answers from a signed cookie without a lookup. */
  readonly cookieCache: boolean;
}

export type BetterAuthKey = `better-auth-${BetterAuthStore}` | `better-auth-${BetterAuthStore}-cookie-cache`;

export function betterAuthKey(variant: BetterAuthVariant): BetterAuthKey {
  return variant.cookieCache ? `better-auth-${variant.store}-cookie-cache` : `better-auth-${variant.store}`;
}

export function betterAuthName(variant: BetterAuthVariant): string {
  return `better-auth ${variant.store}${variant.cookieCache ? ' + cookie cache' : ''}`;
}

export interface BetterAuthTarget extends LoadTarget {
  readonly variant: BetterAuthVariant;
  /** Cookie headers, one per session: the session token (and, with the cookie cache, its data). */
  readonly cookies: readonly string[];
  /** Cheap enough for every answer of the load: a session object, never `null`. */
  readonly verifyBody: (body: string) => boolean;
  /** Every cookie answers 200 with a session of the user (and, with the cookie cache, from the cookie). */
  checkCookies(): Promise<void>;
}

export const GET_SESSION_PATH = '/api/auth/get-session';
const EMAIL = 'bench@example.com';
const PASSWORD = 'bench password';
const SETUP_IN_FLIGHT = 8;
const CHECK_IN_FLIGHT = 16;
const SESSION_BODY_START = '{"session":{';

export async function startBetterAuth(variant: BetterAuthVariant, sessions: number): Promise<BetterAuthTarget> {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-bench-better-auth-'));
  let redis: RedisServerProcess | null = null;
  let server: HttpProcess | null = null;
  const stop = () => tearDown(server, redis, dataDir);
  try {
    if (variant.store === 'redis') redis = await startRedisServer();
    server = await startHttpProcess({
      name: betterAuthName(variant),
      args: [
        fileURLToPath(new URL('./better-auth-server.ts', import.meta.url)),
        '--db', join(dataDir, 'better-auth.db'),
        ...(redis === null ? [] : ['--redis', redis.url]),
        ...(variant.cookieCache ? ['--cookie-cache'] : []),
      ],
      listeningMessage: 'better-auth listening',
      healthPath: '/api/auth/ok',
    });
    const { url } = server;
    const userId = await signUp(url);
    const cookies = await signIn(url, sessions);
    const checkCookies = () => checkSessions(url, cookies, userId, variant.cookieCache);
    await checkCookies();
    return {
      variant,
      url,
      path: GET_SESSION_PATH,
      cookies,
      serverPid: server.pid,
      redisPids: redis === null ? [] : [redis.pid],
      verifyBody: (body) => body.startsWith(SESSION_BODY_START),
      checkCookies,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** As a browser on better-auth's own origin posts: its CSRF check wants the Origin header fetch sends from a page. */
async function post(url: string, body: unknown): Promise<Response> {
  const headers = { 'content-type': 'application/json', origin: new URL(url).origin };
  return fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
}

async function signUp(url: string): Promise<string> {
  const response = await post(`${url}/api/auth/sign-up/email`, { email: EMAIL, password: PASSWORD, name: 'bench' });
  const body = (await response.json()) as { user?: { id?: unknown } } | null;
  const id = body?.user?.id;
  if (response.status !== 200 || typeof id !== 'string') throw new Error(`better-auth sign-up answered ${response.status}: ${JSON.stringify(body)}`);
  return id;
}

/** `sessions` sign-ins of the one user; each gives the Cookie header a browser would send back. */
async function signIn(url: string, sessions: number): Promise<string[]> {
  const cookies: string[] = [];
  const worker = async () => {
    while (cookies.length < sessions) {
      const slot = cookies.push('') - 1;
      const response = await post(`${url}/api/auth/sign-in/email`, { email: EMAIL, password: PASSWORD });
      await response.arrayBuffer();
      const pairs = response.headers.getSetCookie().map((cookie) => cookie.split(';', 1)[0] ?? '');
      if (response.status !== 200 || !pairs.some((pair) => pair.startsWith('better-auth.session_token='))) {
        throw new Error(`better-auth sign-in answered ${response.status} without a session cookie`);
      }
      cookies[slot] = pairs.join('; ');
    }
  };
  await Promise.all(Array.from({ length: SETUP_IN_FLIGHT }, worker));
  return cookies;
}

async function checkSessions(url: string, cookies: readonly string[], userId: string, cookieCache: boolean): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < cookies.length) {
      const index = next++;
      const response = await fetch(`${url}${GET_SESSION_PATH}`, { headers: { cookie: cookies[index] ?? '' } });
      const text = await response.text();
      const fail = (why: string) => new Error(`better-auth cookie ${index} of ${cookies.length}: ${why} (${response.status} ${text.slice(0, 80)})`);
      if (response.status !== 200) throw fail('not 200');
      const body = JSON.parse(text) as { session?: { userId?: unknown }; user?: { id?: unknown } } | null;
      if (body?.session?.userId !== userId || body.user?.id !== userId || !text.startsWith(SESSION_BODY_START)) throw fail('no session of the user');
      // A lookup that missed the cache sets a fresh session_data cookie: the cached variant must not need one.
      if (cookieCache && response.headers.getSetCookie().length > 0) throw fail('not answered from the cookie cache');
    }
  };
  await Promise.all(Array.from({ length: CHECK_IN_FLIGHT }, worker));
}
