/**
 * Property-based tests of every HTTP route (fast-check). The routes are read from the running
 * Fastify instance, so a route added later is covered without touching this file. For generated
 * paths, queries, headers and bodies — arbitrary JSON, unicode and control characters, huge
 * numbers, wrong types, long strings, random and valid tokens — every answer must be:
 * - never a 5xx (a 500 is a bug; no store is down here, so a 503 would be one too);
 * - for a 4xx, the error model `{status, code, msg}` with `status` equal to the HTTP status;
 * and afterwards the server still answers a valid login and a validation.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { call, startTestServer, type TestServer } from '../support/server.ts';

interface RouteUnderTest {
  readonly method: string;
  /** Fastify's pattern: `/v1/user/sessions/:sid`, `/docs/*`. */
  readonly path: string;
}

/**
 * Every route in the router, from `printRoutes()`: one line per tree node, its depth given by the
 * indentation (4 characters a level), its text appended to its parent's, its methods in brackets.
 */
function parseRouteTree(tree: string): RouteUnderTest[] {
  const prefixes: string[] = [];
  const routes: RouteUnderTest[] = [];
  for (const line of tree.split('\n')) {
    const match = /^((?:[│ ] {3})*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (match === null) continue;
    const depth = (match[1] ?? '').length / 4;
    const path = (prefixes[depth - 1] ?? '') + (match[2] ?? '');
    prefixes[depth] = path;
    prefixes.length = depth + 1;
    for (const method of (match[3] ?? '').split(',').map((m) => m.trim())) {
      // HEAD is Fastify's automatic twin of GET; OPTIONS are not routed here.
      if (method !== '' && method !== 'HEAD') routes.push({ method, path });
    }
  }
  return routes;
}

const TOTAL_RUNS = 600;
const PASSWORD = 'property password';
const USERNAME = 'propertyowner';

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

type TokenChoice = { kind: 'none' } | { kind: 'valid'; flag: number; bearer: boolean } | { kind: 'raw'; header: string; value: string };
const tokenChoice: fc.Arbitrary<TokenChoice> = fc.oneof(
  fc.constant<TokenChoice>({ kind: 'none' }),
  fc.record({ kind: fc.constant('valid' as const), flag: fc.constantFrom(0, 1, 2), bearer: fc.boolean() }),
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
  readonly params: string[];
  readonly query: Record<string, string>;
  readonly token: TokenChoice;
  readonly contentType: string | undefined;
  readonly body: string;
}

const requestFor = (route: RouteUnderTest): fc.Arbitrary<GeneratedRequest> => fc.record({
  params: fc.array(pathParam, { minLength: 4, maxLength: 4 }),
  query,
  token: tokenChoice,
  contentType,
  body: rawBody,
}).map((request) => (route.method === 'GET' ? { ...request, body: '' } : request));

// ----------------------------------------------------------------------------------------------

function concretePath(route: RouteUnderTest, params: readonly string[]): string {
  let index = 0;
  const next = () => params[index++ % params.length] ?? 'x';
  return route.path.replace(/:[A-Za-z_]+/g, next).replace(/\*$/, next);
}

describe('every route, generated input', () => {
  let server: TestServer;
  let routes: RouteUnderTest[] = [];
  const seen = new Map<string, Set<number>>();

  const validToken = async (flag: number): Promise<string> => {
    const login = await call(server, 'POST', '/v1/user/login', { username: USERNAME, password: PASSWORD, flag });
    assert.equal(login.status, 200, `setting up a valid token: ${JSON.stringify(login.body)}`);
    return login.body.token;
  };

  before(async () => {
    server = await startTestServer({
      qr: { poll_timeout_seconds: 1 },
      // A wrong password for the owner must not lock the owner out of the valid-token logins.
      login_throttle: { per_account_ip: 1000, per_account: 100_000 },
    });
    assert.equal((await call(server, 'POST', '/v1/user/register', { username: USERNAME, password: PASSWORD })).status, 201);
    routes = parseRouteTree(server.app.printRoutes({ commonPrefix: false }));
  });

  after(async () => {
    await server?.stop();
    const summary = [...seen].map(([route, statuses]) => `${route} ${[...statuses].sort().join(',')}`);
    console.log(`statuses seen per route:\n  ${summary.join('\n  ')}`);
  });

  it('the route list read from the router holds the API (so no route escapes the properties)', () => {
    const listed = new Set(routes.map((route) => `${route.method} ${route.path}`));
    for (const known of ['POST /v1/user/login', 'GET /v1/user/current', 'DELETE /v1/user/sessions/:sid', 'POST /v1/user/login_authcode/:auth_code', 'GET /v1/user/loginstatus', 'GET /readyz']) {
      assert.ok(listed.has(known), `${known} missing from ${[...listed].join(', ')}`);
    }
  });

  it('no 5xx, the error model on every 4xx, for every route', async () => {
    const runsPerRoute = Math.max(6, Math.ceil(TOTAL_RUNS / routes.length));
    for (const route of routes) {
      const statuses = new Set<number>();
      seen.set(`${route.method} ${route.path}`, statuses);
      await fc.assert(
        fc.asyncProperty(requestFor(route), async (generated) => {
          const headers: Record<string, string> = {};
          if (generated.contentType !== undefined && generated.body !== '') headers['content-type'] = generated.contentType;
          const token = generated.token;
          if (token.kind === 'raw') headers[token.header] = token.value;
          if (token.kind === 'valid') {
            const value = await validToken(token.flag);
            if (token.bearer) headers.authorization = `Bearer ${value}`;
            else headers.token = value;
          }
          const search = new URLSearchParams(generated.query).toString();
          const url = `${server.url}${concretePath(route, generated.params)}${search === '' ? '' : `?${search}`}`;
          const response = await fetch(url, {
            method: route.method,
            headers,
            body: route.method === 'GET' || generated.body === '' ? undefined : generated.body,
            redirect: 'manual',
            signal: AbortSignal.timeout(10_000),
          });
          const text = await response.text();
          statuses.add(response.status);
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

  it('the server is still up and answers valid requests', async () => {
    assert.equal((await call(server, 'GET', '/healthz')).status, 200);
    const token = await validToken(1);
    const current = await call(server, 'GET', '/v1/user/current', undefined, token);
    assert.equal(current.status, 200, JSON.stringify(current.body));
    assert.equal(current.body.username, USERNAME);
  });
});
