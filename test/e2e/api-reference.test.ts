/**
 * The HTTP reference tells the truth: docs/api.md names every route the router serves and every
 * error code with its status; the OpenAPI document the server builds declares every error
 * answer a route gives in the error model, and answering through those declarations loses no field
 * of an error (Fastify serialises a response through its schema and drops what the schema lacks);
 * new passwords are documented with the bounds the policy enforces.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { errorStatus } from '../../src/core/errors.ts';
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../../src/core/passwords.ts';
import { call, startTestServer, type TestServer } from '../support/server.ts';
import { routeKey, routesOf } from '../support/routes.ts';

const API_MD = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');

const PASSWORD = 'correct horse battery';
const METRICS_KEY = 'm'.repeat(32);

interface Schema {
  readonly type?: string;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly required?: readonly string[];
  readonly enum?: readonly string[];
  readonly properties?: Record<string, Schema>;
  readonly additionalProperties?: boolean | Schema;
}

interface Operation {
  readonly responses: Record<string, { readonly content?: Record<string, { readonly schema?: Schema }> }>;
  readonly requestBody?: { readonly content: Record<string, { readonly schema: Schema }> };
}

type Paths = Record<string, Record<string, Operation>>;

describe('docs/api.md', () => {
  let server: TestServer;

  // With a metrics bearer key, so the API port's /metrics is in the router too.
  before(async () => {
    server = await startTestServer({ metrics: { port: 0, bearer_key: METRICS_KEY } });
  });
  after(async () => server?.stop());

  it('names every route the router serves, as `METHOD /path`', () => {
    const routes = routesOf(server);
    assert.ok(routes.length >= 40, `only ${routes.length} routes`);
    const missing = routes.map(routeKey).filter((key) => !API_MD.includes(`\`${key}\``));
    assert.deepEqual(missing, [], 'routes docs/api.md does not name');
  });

  it('lists every error code of src/core/errors.ts with its status', () => {
    for (const [code, status] of Object.entries(errorStatus)) {
      const row = new RegExp(`^\\| \`${code}\` \\| ${status} \\|`, 'm');
      assert.ok(row.test(API_MD), `${code} ${status} is not a row of the error table`);
    }
  });
});

describe('the OpenAPI document', () => {
  let server: TestServer;
  let paths: Paths;

  before(async () => {
    server = await startTestServer({ metrics: { port: 0, bearer_key: METRICS_KEY } });
    paths = (await call(server, 'GET', '/openapi.json')).body.paths;
  });
  after(async () => server?.stop());

  const operation = (method: string, path: string): Operation => {
    const found = paths[path]?.[method];
    assert.ok(found, `${method} ${path} is in the document`);
    return found;
  };
  const bodyField = (method: string, path: string, field: string): Schema | undefined =>
    operation(method, path).requestBody?.content['application/json']?.schema.properties?.[field];

  it('gives every operation its error answers, each in the error model with the codes of its status', () => {
    let operations = 0;
    for (const [path, methods] of Object.entries(paths)) {
      for (const [method, { responses }] of Object.entries(methods)) {
        operations += 1;
        const errors = Object.entries(responses).filter(([status]) => Number(status) >= 400);
        // /healthz reads nothing and has nothing to refuse.
        if (path !== '/healthz') assert.ok(errors.length > 0, `${method} ${path} declares no error answer`);
        for (const [status, response] of errors) {
          const schema = response.content?.['application/json']?.schema;
          const label = `${method} ${path} ${status}`;
          assert.deepEqual(schema?.required, ['status', 'code', 'msg'], label);
          assert.equal(schema?.properties?.details?.type, 'object', label);
          const codes = Object.entries(errorStatus).filter(([, s]) => s === Number(status)).map(([code]) => code);
          assert.ok(codes.length > 0, `${label}: a status of the error table`);
          for (const code of schema?.properties?.code?.enum ?? []) assert.ok(codes.includes(code), `${label}: ${code}`);
        }
      }
    }
    assert.ok(operations >= 35, `only ${operations} operations`);
    // The operations endpoints are documented, /metrics because the bearer key puts it on this port.
    for (const path of ['/healthz', '/readyz', '/metrics']) operation('get', path);
    assert.ok(operation('get', '/readyz').responses['503']);
    assert.ok(operation('post', '/v1/user/login').responses['429']);
    assert.ok(operation('get', '/v1/user/current').responses['401']);
  });

  it('answers errors through those schemas without losing a field: details of a 400, a 409 and the 503 of /readyz survive', async () => {
    const refused = await call(server, 'POST', '/v1/user/login', { username: 'x', password: 'x', flag: 9 });
    assert.equal(refused.status, 400);
    assert.deepEqual(refused.body.details, { field: 'body.flag' });

    await call(server, 'POST', '/v1/user/register', { username: 'taken', password: PASSWORD });
    const taken = await call(server, 'POST', '/v1/user/register', { username: 'taken', password: PASSWORD });
    assert.equal(taken.status, 409);
    assert.deepEqual(taken.body, { status: 409, code: 'conflict', msg: taken.body.msg, details: { field: 'username' } });

    const { kv } = server.runtime;
    const ping = kv.ping.bind(kv);
    Object.assign(kv, { ping: async () => false });
    try {
      const notReady = await call(server, 'GET', '/readyz');
      assert.equal(notReady.status, 503);
      assert.deepEqual(notReady.body.details, { kv: false, db: true });
    } finally {
      Object.assign(kv, { ping });
    }
  });

  it('documents a new password with the policy\'s bounds and a presented one as any length up to 512', () => {
    for (const [method, path, field] of [
      ['post', '/v1/user/register', 'password'], ['put', '/v1/user/updatepassword', 'new_password'], ['post', '/v1/user/pwdforget', 'new_password'],
    ] as const) {
      const schema = bodyField(method, path, field);
      assert.equal(schema?.minLength, PASSWORD_MIN_LENGTH, `${path} ${field}`);
      assert.equal(schema?.maxLength, PASSWORD_MAX_LENGTH, `${path} ${field}`);
    }
    // An account from before the policy may have a shorter password: logging in with it stays possible.
    assert.equal(bodyField('post', '/v1/user/login', 'password')?.minLength, 1);
    assert.equal(bodyField('post', '/v1/user/login', 'password')?.maxLength, 512);
    assert.equal(bodyField('put', '/v1/user/updatepassword', 'password')?.minLength, 1);
  });

  it('still refuses a too short or too long new password with the policy\'s answer, naming the field', async () => {
    for (const password of ['short', 'x'.repeat(PASSWORD_MAX_LENGTH + 1)]) {
      const answer = await call(server, 'POST', '/v1/user/register', { username: 'newcomer', password });
      assert.equal(answer.status, 400);
      assert.equal(answer.body.code, 'invalid_request');
      assert.deepEqual(answer.body.details, { field: 'password' });
      assert.match(answer.body.msg, /^password must be at (least|most)/);
    }
    // A password the policy accepts is no longer than it allows, nor is a short old one refused at login.
    const short = await call(server, 'POST', '/v1/user/login', { username: 'taken', password: 'x', flag: 1 });
    assert.equal(short.body.code, 'invalid_credentials');
  });
});
