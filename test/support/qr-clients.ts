/**
 * The two sides of a QR login, as HTTP clients: the signed-in app (a session token) and the
 * browser (a login request with its poll secret). Each takes the node it talks to, so the two
 * sides can be on different latchkey nodes.
 */
import assert from 'node:assert/strict';
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

/** Resolves once the poll has had time to subscribe and start waiting. */
export const settle = (ms = 300): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
