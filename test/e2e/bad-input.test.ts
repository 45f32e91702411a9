import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createAccount } from '../../src/flows/password/password-flow.ts';
import { call, type TestServer } from '../support/server.ts';
import { PROVIDER, startSsoWorld, type SsoWorld } from '../support/idp.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { skipUnless } from '../support/services.ts';
import { declaredInputs, fillPath, paramNames, routeKey, routesOf, type DeclaredInput, type FieldSchema, type RouteUnderTest } from '../support/routes.ts';

/**
 * Bad input on every route gets a 4xx in the error model, never a 5xx, and nothing is lost or
 * half-written: the accounts, every account's sessions and devices are the same afterwards.
 *
 * The routes are read from the router (a route added later is walked without touching this file)
 * and what each declares of its input from the OpenAPI document built from the same schemas. Each
 * malformed request is sent three times — without a token, with a user's, with an administrator's —
 * on a server with an SSO provider configured, so the admin and SSO routes are walked past their
 * guards, and its accounts in PostgreSQL (which refuses a NUL character in text: one that reaches a
 * query is a 500, so the edge must refuse it). Input is "malformed" only where the route itself says so: a body that does not parse (or
 * is too big, or of a type nothing reads) on any route, a body breaking the route's declared body
 * schema, a path or query value breaking its declared parameter; so a request that ends a session
 * when it is well-formed (quit, revoke_others) never is, and every answer must be a refusal.
 */

const PASSWORD = 'correct horse';
const USER = 'eve';
const ADMIN = 'eveadmin';

/** Harmless well-formed path values (nothing of the caller's), used where the path is not what is broken. */
const SAFE_PARAMS: Record<string, string> = {
  sid: 'A'.repeat(43), auth_code: 'A'.repeat(43), uuid: '0'.repeat(32), device_id: 'no-such-device', id: PROVIDER, file: 'no-such-file', '*': 'no-such-page',
};

/** Path values that are no id of anything: empty-ish, over-long, undecodable, traversal, control and bidi characters. */
const BAD_PATH_VALUES = ['%00', 'x'.repeat(300), '%E0%A4%A', '..%2F..%2Fetc%2Fpasswd', '%20', '%E2%80%AE%F0%9F%91%A9', '__proto__', '-1'];

/** Bodies that break every object schema near a login, from the first version of this test. */
const HANDMADE_BODIES: unknown[] = [
  { username: 1, password: true, flag: 'x' },
  { username: 'e\u0000ve', password: PASSWORD, flag: 1 },
  { username: USER, password: PASSWORD, flag: 1, device: { device_id: 'a\u0000b' } },
  { username: USER, password: PASSWORD, flag: 1, device: { device_id: 'phone', device_name: '\u0000', device_model: 'x\u0007' } },
  { username: USER, password: PASSWORD, flag: 3 }, { username: USER, password: PASSWORD, flag: -1 },
  { username: USER, password: PASSWORD, flag: 'x' }, { username: USER, password: PASSWORD, flag: 1.5 },
  { username: '👩‍💻\u202e', password: '\u0007\u0008', flag: 1, extra: true },
  { username: USER, password: 'x'.repeat(10_000), flag: 1 }, { username: USER, password: PASSWORD, flag: 1, device: 'nope' },
  { username: USER, password: PASSWORD, flag: 1, device: { device_id: 'x'.repeat(1000) } },
  { username: USER, password: PASSWORD, flag: 1, extra: { admin: true } },
  { password: PASSWORD, new_password: 'short' }, { password: PASSWORD, new_password: 42 },
];

/** Raw bodies no route can read, whatever it declares. [content type, body] */
const UNREADABLE_BODIES: readonly [string, string][] = [
  ['application/json', '{"a":'], ['application/json', '\u0000\u0001'], ['application/json', '['.repeat(5000)],
  // Prototype pollution through the parser (secure-json-parse refuses both).
  ['application/json', '{"__proto__": {"role": "admin", "polluted": true}}'],
  ['application/json', '{"constructor": {"prototype": {"polluted": true}}}'],
  ['text/plain', 'hello'], ['application/xml', '<a/>'], ['application/x-www-form-urlencoded', 'a=b'], ['multipart/form-data; boundary=x', '--x--'],
];
const ONE_MIB = JSON.stringify({ a: 'x'.repeat(1 << 20) });

const BAD_TOKENS = ['garbage', 'x'.repeat(10 * 1024), 'A'.repeat(43), 'é'.repeat(43), 'Bearer', ''];

/** Values that break a field's declared schema (empty when the schema admits anything). */
function brokenValues(field: FieldSchema): unknown[] {
  const values: unknown[] = [null, [field.type === 'string' ? 'x' : 1]];
  if (field.type === 'string') {
    values.push(42, {});
    if (field.enum !== undefined) values.push('not-a-member');
    if (field.pattern !== undefined) values.push('!\u0000');
    if (field.maxLength !== undefined) values.push('x'.repeat(field.maxLength + 1));
    if ((field.minLength ?? 0) > 0) values.push('');
  } else if (field.type === 'integer' || field.type === 'number') {
    values.push('1', {}, field.type === 'integer' ? 1.5 : 'x');
    if (field.enum !== undefined) values.push(99);
  } else if (field.type === 'boolean') {
    values.push('true', 1);
  } else if (field.type === 'object') {
    values.push('nope', 42);
    for (const [name, sub] of Object.entries(field.properties ?? {})) values.push(...brokenValues(sub).map((bad) => ({ [name]: bad })));
  }
  return values;
}

/** Query values that break a declared query parameter (none for a free-form one). */
function brokenQueryValues(field: FieldSchema): string[] {
  const values: string[] = [];
  if (field.enum !== undefined) values.push('not-a-member');
  const { pattern } = field;
  if (pattern !== undefined) values.push(...['!\u0000', '-1', 'x'].filter((value) => !new RegExp(pattern, 'u').test(value)));
  if (field.maxLength !== undefined) values.push('x'.repeat(field.maxLength + 1));
  return values;
}

/** JSON bodies that break a declared body schema: not an object, missing what it requires, each field wrong, an unknown field. */
function brokenBodies(schema: FieldSchema): unknown[] {
  const bodies: unknown[] = [null, 42, 'string', true, [], [{}], ...HANDMADE_BODIES];
  if ((schema.required ?? []).length > 0) bodies.push({});
  for (const [name, field] of Object.entries(schema.properties ?? {})) bodies.push(...brokenValues(field).map((bad) => ({ [name]: bad })));
  if (schema.additionalProperties === false) bodies.push({ unexpected_field: 1 });
  return bodies;
}

interface Answer {
  readonly status: number;
  readonly text: string;
}

interface Outgoing {
  readonly path: string;
  readonly contentType?: string;
  readonly body?: string;
  readonly headers?: Record<string, string>;
}

/** Everything the bad requests could have touched, read straight from the stores. */
async function snapshot(server: TestServer): Promise<unknown> {
  const { accounts, sessions } = server.runtime;
  const { users, total } = await accounts.listUsers({ offset: 0, limit: 1000 });
  const perUser = await Promise.all(users.map(async (user) => ({
    uid: user.uid, username: user.username, role: user.role, status: user.status, email: user.email, phone: user.phone, name: user.name,
    sessions: (await sessions.list(user.uid)).map((s) => s.sid).sort(),
    devices: (await accounts.listDevices(user.uid)).map((d) => d.deviceId).sort(),
  })));
  return { total, users: perUser.sort((a, b) => a.uid.localeCompare(b.uid)) };
}

describe('bad input on every route', { skip: await skipUnless('postgres') }, () => {
  let world: SsoWorld;
  let database: TestDatabase | undefined;
  let server: TestServer;
  let routes: RouteUnderTest[] = [];
  let declared = new Map<string, DeclaredInput>();
  /** None, a user's, an administrator's. */
  const callers: { label: string; token: string | null }[] = [];
  let before_: unknown;
  let sent = 0;

  before(async () => {
    database = await createTestDatabase();
    world = await startSsoWorld({
      db: database.url,
      // Wrong current passwords in the bad bodies must not lock the callers out of the final checks.
      server: { login_throttle: { per_account_ip: 1000, per_account: 100_000 } },
    });
    server = world.server;
    const registered = await call(server, 'POST', '/v1/user/register', { username: USER, password: PASSWORD, flag: 1 });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    await createAccount(server.runtime, { username: ADMIN, password: PASSWORD }, 'admin');
    const admin = await call(server, 'POST', '/v1/user/login', { username: ADMIN, password: PASSWORD, flag: 1 });
    assert.equal(admin.status, 200, JSON.stringify(admin.body));
    callers.push({ label: 'no token', token: null }, { label: 'user', token: registered.body.token }, { label: 'admin', token: admin.body.token });
    // The admin routes name a real user: an accepted bad request to them would change someone.
    SAFE_PARAMS.uid = registered.body.uid;
    routes = routesOf(server);
    declared = await declaredInputs(server);
    before_ = await snapshot(server);
  });
  after(async () => {
    console.log(`bad input: ${sent} requests over ${routes.length} routes`);
    await world?.stop();
    await database?.drop();
  });

  async function send(route: RouteUnderTest, outgoing: Outgoing, token: string | null): Promise<Answer> {
    sent += 1;
    const headers: Record<string, string> = { ...outgoing.headers };
    if (token !== null) headers.token = token;
    if (outgoing.contentType !== undefined) headers['content-type'] = outgoing.contentType;
    const response = await fetch(server.url + outgoing.path, {
      method: route.method, headers, body: outgoing.body, redirect: 'manual', signal: AbortSignal.timeout(10_000),
    });
    return { status: response.status, text: await response.text() };
  }

  /** Sends it with each caller; every answer must be a refusal in the error model. */
  async function refusedByEveryone(route: RouteUnderTest, outgoing: Outgoing, what: string): Promise<void> {
    for (const caller of callers) {
      const answer = await send(route, outgoing, caller.token);
      const label = `${routeKey(route)} ${what} as ${caller.label} → ${answer.status} ${answer.text.slice(0, 200)}`;
      assert.ok(answer.status >= 400 && answer.status < 500, label);
      assertErrorModel(answer, label);
    }
  }

  const safePath = (route: RouteUnderTest) => fillPath(route, (name) => SAFE_PARAMS[name] ?? 'x');
  const inputOf = (route: RouteUnderTest): DeclaredInput => declared.get(routeKey(route)) ?? { body: null, query: {}, params: {} };

  it('the walk covers the whole router, and the admin and SSO routes are among the routes walked', () => {
    const keys = routes.map(routeKey);
    for (const known of ['POST /v1/user/login', 'PUT /v1/manager/users/:uid/status', 'POST /v1/auth/oidc/:id/exchange', 'GET /console/:file']) {
      assert.ok(keys.includes(known), `${known} missing from ${keys.join(', ')}`);
    }
    // Every route with a declared schema is found in the OpenAPI document under the router's name.
    const unmatched = [...declared.keys()].filter((key) => !keys.includes(key));
    assert.deepEqual(unmatched, [], 'OpenAPI operations the router does not list');
  });

  it('a body no route can read is refused everywhere: broken JSON, polluting keys, other types, 1 MiB', async () => {
    for (const route of routes.filter((r) => r.method !== 'GET')) {
      for (const [contentType, body] of UNREADABLE_BODIES) {
        await refusedByEveryone(route, { path: safePath(route), contentType, body }, `${contentType} ${JSON.stringify(body.slice(0, 30))}`);
      }
      await refusedByEveryone(route, { path: safePath(route), contentType: 'application/json', body: ONE_MIB }, '1 MiB body');
    }
  });

  it('a body breaking the route\'s declared schema is refused: wrong shape, each field wrong, unknown fields', async () => {
    const withBodies = routes.filter((route) => inputOf(route).body !== null);
    assert.ok(withBodies.length >= 10, `only ${withBodies.length} routes declare a body`);
    for (const route of withBodies) {
      const schema = inputOf(route).body;
      if (schema === null) continue;
      for (const body of brokenBodies(schema)) {
        await refusedByEveryone(route, { path: safePath(route), contentType: 'application/json', body: JSON.stringify(body) }, JSON.stringify(body).slice(0, 80));
      }
    }
  });

  it('a path value that names nothing valid is refused on every route with a path parameter', async () => {
    for (const route of routes.filter((r) => paramNames(r).length > 0)) {
      for (const name of paramNames(route)) {
        for (const bad of BAD_PATH_VALUES) {
          const path = fillPath(route, (param) => (param === name ? bad : SAFE_PARAMS[param] ?? 'x'));
          // A body-taking route gets a well-formed body, so the path is what it refuses.
          const outgoing: Outgoing = route.method === 'GET' ? { path } : { path, contentType: 'application/json', body: '{}' };
          await refusedByEveryone(route, outgoing, `${name}=${bad.slice(0, 20)}`);
        }
      }
    }
  });

  it('a query value breaking a declared query parameter is refused', async () => {
    let checked = 0;
    for (const route of routes) {
      for (const [name, field] of Object.entries(inputOf(route).query)) {
        for (const bad of brokenQueryValues(field)) {
          checked += 1;
          const path = `${safePath(route)}?${new URLSearchParams({ [name]: bad })}`;
          const outgoing: Outgoing = route.method === 'GET' ? { path } : { path, contentType: 'application/json', body: '{}' };
          await refusedByEveryone(route, outgoing, `?${name}=${bad.slice(0, 20)}`);
        }
      }
    }
    assert.ok(checked >= 20, `only ${checked} bad query values`);
  });

  it('junk queries and repeated keys on any route: never a 5xx, errors in the error model', async () => {
    const junk = ['query=%00', 'device_id=%00&device_name=a%00', 'a=1&a=2', 'flag=1&flag=2', '__proto__[polluted]=1', 'constructor[prototype][polluted]=1', `q=${'x'.repeat(8000)}`, '%E0%A4%A=1', '=&&=='];
    for (const route of routes) {
      for (const query of junk) {
        for (const caller of callers) {
          // Without a body: a well-formed request to quit or revoke_others would end the caller's session.
          if (caller.token !== null && route.method !== 'GET') continue;
          const answer = await send(route, { path: `${safePath(route)}?${query}` }, caller.token);
          const label = `${routeKey(route)} ?${query.slice(0, 30)} as ${caller.label} → ${answer.status} ${answer.text.slice(0, 200)}`;
          assert.ok(answer.status < 500, label);
          if (answer.status >= 400) assertErrorModel(answer, label);
        }
      }
    }
  });

  it('a garbage or oversized token is 401 wherever a token is needed, and never a 5xx', async () => {
    for (const route of routes) {
      // Only without a body: a route that needs no token and takes none would act on a well-formed request.
      const anonymous = await send(route, { path: safePath(route) }, null);
      const needsToken = anonymous.status === 401;
      for (const bad of BAD_TOKENS) {
        for (const headers of [{ token: bad }, { authorization: `Bearer ${bad}` }] as Record<string, string>[]) {
          const answer = await send(route, { path: safePath(route), headers }, null);
          const label = `${routeKey(route)} token ${bad.slice(0, 10)} → ${answer.status} ${answer.text.slice(0, 200)}`;
          assert.ok(answer.status < 500, label);
          if (needsToken) assert.ok([400, 401, 431].includes(answer.status), label);
          if (answer.status >= 400 && answer.status !== 431) assertErrorModel(answer, label);
        }
      }
    }
  });

  it('unknown routes are 404 not_found and undecodable URLs 400, in the error model', async () => {
    const answer = await call(server, 'GET', '/v1/nope/here');
    assert.equal(answer.status, 404);
    assertErrorModel({ status: answer.status, text: JSON.stringify(answer.body) }, 'unknown route');
    const badUrl = await call(server, 'GET', '/v1/nope/%00%ff');
    assert.equal(badUrl.status, 400);
    assertErrorModel({ status: badUrl.status, text: JSON.stringify(badUrl.body) }, 'undecodable url');
  });

  it('nothing was lost or half-written by all of that', async () => {
    assert.deepEqual(await snapshot(server), before_, 'accounts, sessions and devices are as they were');
    for (const caller of callers) {
      if (caller.token === null) continue;
      const current = await call(server, 'GET', '/v1/user/current', undefined, caller.token);
      assert.equal(current.status, 200, `the ${caller.label}'s session survived`);
    }
    const polluted: Record<string, unknown> = {};
    assert.equal(polluted.polluted, undefined);
    assert.equal(polluted.role, undefined);
    const login = await call(server, 'POST', '/v1/user/login', { username: USER, password: PASSWORD, flag: 2 });
    assert.equal(login.status, 200, 'the password is unchanged');
    assert.equal(login.body.role, 'user');
  });
});

function assertErrorModel(answer: Answer, label: string): void {
  let body: any;
  try {
    body = JSON.parse(answer.text);
  } catch {
    assert.fail(`${label}: not JSON`);
  }
  assert.equal(typeof body, 'object', `${label}: JSON object body`);
  assert.equal(body.status, answer.status, `${label}: status field equals HTTP status`);
  assert.match(body.code, /^[a-z_]+$/, `${label}: snake_case code`);
  assert.equal(typeof body.msg, 'string', `${label}: msg`);
  if (body.code === 'invalid_request') assert.equal(typeof body.details?.field, 'string', `${label}: details.field`);
}
