/**
 * Property-based tests of every HTTP route (fast-check). The routes are read from the running
 * Fastify instance, so a route added later is covered without touching this file. For generated
 * paths, queries, headers and bodies — arbitrary JSON, unicode and control characters, huge
 * numbers, wrong types, long strings, random and valid tokens — every answer must be:
 * - never a 5xx (a 500 is a bug; no store is down here, so a 503 would be one too);
 * - for a 4xx, the error model `{status, code, msg}` with `status` equal to the HTTP status;
 * and afterwards the server still answers a valid login and a validation.
 *
 * Twice: on a bare server, and on one with an SSO provider (a real IdP) where some generated
 * requests carry an administrator's token and name a real user and the real provider, so that
 * `/v1/manager/*` and `/v1/auth/oidc/*` are walked past their guards, not only up to them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { createAccount } from '../../src/flows/password/password-flow.ts';
import { call, startTestServer, type TestServer } from '../support/server.ts';
import { PROVIDER, startSsoWorld } from '../support/idp.ts';
import { fillPath, paramNames, routeKey, routesOf, type RouteUnderTest } from '../support/routes.ts';

/** Per world: about ten generated requests per route. */
const TOTAL_RUNS = 480;
const PASSWORD = 'property password';
const USERNAME = 'propertyowner';
const ADMIN = 'propertyadmin';
const TARGET = 'propertytarget';

// ----------------------------------------------------------------------------------------------
// generators

const hugeNumbers = fc.constantFrom(1e308, -1e308, 2 ** 53 + 2, -(2 ** 63), 1e-320, 0, -0, 4294967296);
const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom('', ' ', '\u0000', '\r\n', '../../etc/passwd', '%00', '\u202e', '\ud800', 'null', '0', '-1', 'a@b.c', '86-13800000000'),
  fc.nat(3000).map((n) => 'x'.repeat(n)),
);
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  anyText, fc.integer(), fc.double(), hugeNumbers, fc.boolean(), fc.constant(null),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
);
const FIELDS = [
  'username', 'password', 'new_password', 'flag', 'device', 'name', 'email', 'zone', 'phone', 'revoke_other_sessions',
  'channel', 'to', 'code', 'purpose', 'uuid', 'poll_secret', 'approve', 'status', 'token', 'device_id', 'device_name',
  'device_model', 'lk_code', 'app_verifier', '__proto__', 'constructor',
];
/** Bodies near the real ones: known field names, the real user sometimes, values of every type. */
const plausibleBody = fc.record({
  username: fc.oneof({ weight: 3, arbitrary: fc.constant(USERNAME) }, anyText, anyValue),
  password: fc.oneof({ weight: 3, arbitrary: fc.constant(PASSWORD) }, anyText, anyValue),
  flag: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(0, 1, 2) }, fc.constantFrom(3, -1, '1', 1.5), anyValue),
  device: fc.oneof(fc.record({ device_id: anyText, device_name: anyText, device_model: anyText }, { requiredKeys: [] }), anyValue),
}, { requiredKeys: ['username', 'password', 'flag'] })
  .chain((body) => fc.boolean().map((withDevice) => (withDevice ? body : { username: body.username, password: body.password, flag: body.flag })));
const jsonBody = fc.oneof(
  { weight: 4, arbitrary: plausibleBody.map((body) => JSON.stringify(body)) },
  { weight: 2, arbitrary: fc.dictionary(fc.constantFrom(...FIELDS), anyValue, { maxKeys: 6 }).map((body) => JSON.stringify(body)) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)) },
);
const rawBody = fc.oneof(
  { weight: 6, arbitrary: jsonBody },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '', ' ', 'null', '"text"', '123456789012345678901234567890', '{"flag": 1e400}', '{"a":', '[1,2,',
      '['.repeat(5000), '{"__proto__": {"role": "admin"}}', `{"username":"${'u'.repeat(70 * 1024)}"}`,
    ),
  },
);

/** A valid token is the owner's (`valid`) or, where the world has one, the administrator's (`admin`). */
type TokenChoice = { kind: 'none' } | { kind: 'valid' | 'admin'; flag: number; bearer: boolean } | { kind: 'raw'; header: string; value: string };
const tokenChoice = (withAdmin: boolean): fc.Arbitrary<TokenChoice> => fc.oneof(
  fc.constant<TokenChoice>({ kind: 'none' }),
  fc.record({ kind: fc.constant('valid' as const), flag: fc.constantFrom(0, 1, 2), bearer: fc.boolean() }),
  ...(withAdmin ? [{ weight: 2, arbitrary: fc.record({ kind: fc.constant('admin' as const), flag: fc.constantFrom(0, 1, 2), bearer: fc.boolean() }) }] : []),
  fc.record({
    kind: fc.constant('raw' as const),
    header: fc.constantFrom('token', 'authorization'),
    // fetch refuses control characters in headers; printable ASCII is what can reach the server.
    value: fc.oneof(fc.string({ unit: 'grapheme-ascii', maxLength: 80 }), fc.constantFrom('Bearer ', 'Bearer x', 'bearer  ', 'A'.repeat(43), 'A'.repeat(8000))),
  }),
);
const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('application/json', 'application/json; charset=utf-8') },
  { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', undefined) },
);
const pathParam = fc.oneof(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 50 }).map(encodeURIComponent),
  fc.constantFrom('A'.repeat(43), '0'.repeat(32), '%E0%A4%A', '%', '..', '%2e%2e', 'x'.repeat(300), '%00', 'index.html', 'app.js'),
);
const query = fc.dictionary(
  fc.oneof(fc.constantFrom('uuid', 'poll_secret', 'last_status', 'flag', 'page', 'page_size', 'query', 'limit', 'since', 'type', 'uid'), fc.string({ maxLength: 6 })),
  fc.oneof(anyText, hugeNumbers.map(String)),
  { maxKeys: 4 },
);

interface GeneratedRequest {
  readonly params: Record<string, string>;
  readonly query: Record<string, string>;
  readonly token: TokenChoice;
  readonly contentType: string | undefined;
  readonly body: string;
}

/** Real values of path parameters by name (a user's uid, the provider's id): half the time one of them. */
type KnownParams = Readonly<Record<string, readonly string[]>>;

const paramFor = (known: readonly string[] | undefined): fc.Arbitrary<string> =>
  known === undefined || known.length === 0 ? pathParam : fc.oneof(fc.constantFrom(...known), pathParam);

const requestFor = (route: RouteUnderTest, world: World): fc.Arbitrary<GeneratedRequest> => fc.record({
  params: fc.record(Object.fromEntries(paramNames(route).map((name) => [name, paramFor(world.known[name])]))),
  query,
  token: tokenChoice(world.hasAdmin),
  contentType,
  body: rawBody,
}).map((request) => (route.method === 'GET' ? { ...request, body: '' } : request));

// ----------------------------------------------------------------------------------------------

interface World {
  readonly server: TestServer;
  readonly known: KnownParams;
  /** The world has an administrator (ADMIN, PASSWORD) whose tokens the requests may carry. */
  readonly hasAdmin: boolean;
  stop(): Promise<void>;
}

const serverOptions = {
  qr: { poll_timeout_seconds: 1 },
  // A wrong password for the owner must not lock the owner out of the valid-token logins.
  login_throttle: { per_account_ip: 1000, per_account: 100_000 },
};

async function bareWorld(): Promise<World> {
  const server = await startTestServer(serverOptions);
  assert.equal((await call(server, 'POST', '/v1/user/register', { username: USERNAME, password: PASSWORD })).status, 201);
  return { server, known: {}, hasAdmin: false, stop: () => server.stop() };
}

/** An SSO provider configured against a real IdP, an administrator, and a plain user the admin routes can name. */
async function adminSsoWorld(): Promise<World> {
  const world = await startSsoWorld({ server: serverOptions });
  const { server } = world;
  assert.equal((await call(server, 'POST', '/v1/user/register', { username: USERNAME, password: PASSWORD })).status, 201);
  await createAccount(server.runtime, { username: ADMIN, password: PASSWORD }, 'admin');
  // Not the owner: an admin request may ban whom it names, and the owner's logins must keep working.
  const target = await createAccount(server.runtime, { username: TARGET, password: PASSWORD });
  return { server, known: { uid: [target.uid], id: [PROVIDER] }, hasAdmin: true, stop: () => world.stop() };
}

/**
 * Route families behind a guard, and what a request needs to pass it: an administrator's token, or
 * the id of a configured provider. Their walk must get past the guard, not only up to it.
 */
const GUARDED_FAMILIES: readonly { prefix: string; passes: (generated: GeneratedRequest) => boolean }[] = [
  { prefix: '/v1/manager/', passes: (generated) => generated.token.kind === 'admin' },
  { prefix: '/v1/auth/oidc/', passes: (generated) => generated.params.id === PROVIDER },
];

const WORLDS = [
  { label: 'a bare server', startWorld: bareWorld, pastGuards: false },
  { label: 'an admin token and an SSO provider', startWorld: adminSsoWorld, pastGuards: true },
];

for (const { label, startWorld, pastGuards } of WORLDS) {
  describe(`every route, generated input, on ${label}`, () => {
    let world: World;
    let routes: RouteUnderTest[] = [];
    const seen = new Map<string, Set<number>>();
    /** Statuses of the requests to a guarded family that carried what its guard asks for. */
    const credentialed = new Map<string, number[]>(GUARDED_FAMILIES.map(({ prefix }) => [prefix, []]));

    const validToken = async (flag: number, username = USERNAME): Promise<string> => {
      const login = await call(world.server, 'POST', '/v1/user/login', { username, password: PASSWORD, flag });
      assert.equal(login.status, 200, `setting up a valid token: ${JSON.stringify(login.body)}`);
      return login.body.token;
    };

    before(async () => {
      world = await startWorld();
      routes = routesOf(world.server);
    });

    after(async () => {
      await world?.stop();
      const summary = [...seen].map(([route, statuses]) => `${route} ${[...statuses].sort().join(',')}`);
      console.log(`statuses seen per route on ${label}:\n  ${summary.join('\n  ')}`);
    });

    it('the route list read from the router holds the API (so no route escapes the properties)', () => {
      const listed = new Set(routes.map((route) => `${route.method} ${route.path}`));
      for (const known of ['POST /v1/user/login', 'GET /v1/user/current', 'DELETE /v1/user/sessions/:sid', 'POST /v1/user/login_authcode/:auth_code', 'GET /v1/user/loginstatus', 'GET /readyz']) {
        assert.ok(listed.has(known), `${known} missing from ${[...listed].join(', ')}`);
      }
    });

    it('no 5xx, the error model on every 4xx, for every route', async () => {
      const { server } = world;
      const runsPerRoute = Math.max(6, Math.ceil(TOTAL_RUNS / routes.length));
      for (const route of routes) {
        const statuses = new Set<number>();
        seen.set(routeKey(route), statuses);
        await fc.assert(
          fc.asyncProperty(requestFor(route, world), async (generated) => {
            const headers: Record<string, string> = {};
            if (generated.contentType !== undefined && generated.body !== '') headers['content-type'] = generated.contentType;
            const token = generated.token;
            if (token.kind === 'raw') headers[token.header] = token.value;
            if (token.kind === 'valid' || token.kind === 'admin') {
              const value = await validToken(token.flag, token.kind === 'admin' ? ADMIN : USERNAME);
              if (token.bearer) headers.authorization = `Bearer ${value}`;
              else headers.token = value;
            }
            const search = new URLSearchParams(generated.query).toString();
            const url = `${server.url}${fillPath(route, (name) => generated.params[name] ?? 'x')}${search === '' ? '' : `?${search}`}`;
            const response = await fetch(url, {
              method: route.method,
              headers,
              body: route.method === 'GET' || generated.body === '' ? undefined : generated.body,
              redirect: 'manual',
              signal: AbortSignal.timeout(10_000),
            });
            const text = await response.text();
            statuses.add(response.status);
            for (const { prefix, passes } of GUARDED_FAMILIES) {
              if (route.path.startsWith(prefix) && passes(generated)) credentialed.get(prefix)?.push(response.status);
            }
            const where = `${route.method} ${url.slice(0, 200)} → ${response.status} ${text.slice(0, 300)}`;
            assert.ok(response.status < 500, where);
            if (response.status >= 400) {
              const body: unknown = JSON.parse(text);
              assert.ok(body !== null && typeof body === 'object', where);
              const { status, code, msg } = body as Record<string, unknown>;
              assert.equal(status, response.status, where);
              assert.ok(typeof code === 'string' && /^[a-z_]+$/.test(code), where);
              assert.equal(typeof msg, 'string', where);
            }
          }),
          { numRuns: runsPerRoute, endOnFailure: true },
        );
      }
    });

    it('requests to the guarded route families got past their guards', { skip: !pastGuards }, () => {
      for (const { prefix } of GUARDED_FAMILIES) {
        const answered = credentialed.get(prefix) ?? [];
        assert.ok(answered.length > 0, `no request to ${prefix}* carried what its guard asks for`);
        // 401, 403 and 404 are what a guard answers (no session, not an admin, no such provider).
        assert.ok(answered.some((status) => ![401, 403, 404].includes(status)), `${prefix}*: only ${[...new Set(answered)].join(',')}`);
      }
    });

    it('the server is still up and answers valid requests', async () => {
      const { server } = world;
      assert.equal((await call(server, 'GET', '/healthz')).status, 200);
      const token = await validToken(1);
      const current = await call(server, 'GET', '/v1/user/current', undefined, token);
      assert.equal(current.status, 200, JSON.stringify(current.body));
      assert.equal(current.body.username, USERNAME);
    });
  });
}
