/**
 * docs/security.md hole 4: a public /metrics told which addresses have accounts
 * (`latchkey_code_sent_total{result="sent"|"suppressed"}`).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/config.ts';
import { call, startTestServer, type TestServer } from '../support/server.ts';
import { startCodeTestServer, type CodeTestServer } from '../support/codes.ts';

const KEY = 'metrics-bearer-key-for-tests-0123456789';

describe('/metrics is not public', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.stop();
  });

  it('the API port answers /metrics 404 when no bearer key is configured, with or without a guess', async () => {
    for (const authorization of [undefined, `Bearer ${KEY}`, 'Bearer ']) {
      const response = await fetch(`${server.url}/metrics`, { headers: authorization === undefined ? {} : { authorization } });
      assert.equal(response.status, 404);
      assert.equal(((await response.json()) as { code: string }).code, 'not_found');
    }
  });

  it('the metrics listener, on loopback, serves them without a key', async () => {
    assert.ok(server.metricsUrl !== null);
    assert.match(server.metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const response = await fetch(server.metricsUrl);
    assert.equal(response.status, 200);
    assert.match(await response.text(), /latchkey_login_total/);
    assert.equal((await fetch(server.metricsUrl.replace(/\/metrics$/, '/v1/user/current'))).status, 404, 'nothing else is served there');
  });
});

describe('/metrics behind metrics.bearer_key', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ metrics: { port: null, bearer_key: KEY } });
  });
  after(async () => {
    await server.stop();
  });

  it('answers only the configured key (anything else looks like no route at all)', async () => {
    assert.equal(server.metricsUrl, null, 'metrics.port: null turns the listener off');
    const wrongSameLength = KEY.slice(0, -1) + (KEY.endsWith('9') ? '8' : '9');
    const answers = await Promise.all([undefined, 'Bearer ', `Bearer ${wrongSameLength}`, `Bearer ${KEY}x`, KEY, `Basic ${KEY}`].map(async (authorization) => {
      const response = await fetch(`${server.url}/metrics`, { headers: authorization === undefined ? {} : { authorization } });
      return { status: response.status, body: await response.json() };
    }));
    for (const answer of answers) assert.deepEqual(answer, { status: 404, body: { status: 404, code: 'not_found', msg: 'no route GET /metrics' } });
    for (const scheme of ['Bearer', 'bearer']) {
      const good = await fetch(`${server.url}/metrics`, { headers: { authorization: `${scheme} ${KEY}` } });
      assert.equal(good.status, 200);
      assert.match(await good.text(), /latchkey_login_total/);
    }
  });
});

describe('metrics config', () => {
  it('defaults to a listener on 127.0.0.1:9464 and no bearer key', () => {
    assert.deepEqual(parseConfig({}).metrics, { listener: { host: '127.0.0.1', port: 9464 }, bearerKey: undefined });
    assert.deepEqual(parseConfig({ metrics: { port: 'off' } }).metrics.listener, null);
  });

  it('takes LATCHKEY_METRICS_* from the environment over the file', () => {
    assert.equal(loadConfig({ env: { LATCHKEY_METRICS_PORT: 'off' } }).metrics.listener, null);
    const config = loadConfig({ env: { LATCHKEY_METRICS_HOST: '10.0.0.5', LATCHKEY_METRICS_PORT: '9100', LATCHKEY_METRICS_BEARER_KEY: KEY } });
    assert.deepEqual(config.metrics, { listener: { host: '10.0.0.5', port: 9100 }, bearerKey: KEY });
  });

  it('refuses a short bearer key without printing it', () => {
    assert.throws(() => parseConfig({ metrics: { bearer_key: 'hunter2-hunter2' } }), (error: unknown) =>
      error instanceof ConfigError && error.message.startsWith('config metrics.bearer_key:') && !error.message.includes('hunter2'));
    assert.throws(() => parseConfig({ metrics: { port: 70_000 } }), /config metrics\.port:/);
  });
});

describe('no metric depends on whether an address has an account', () => {
  let server: CodeTestServer;
  before(async () => {
    server = await startCodeTestServer();
  });
  after(async () => {
    await server.stop();
  });

  /** Every latchkey_ sample but the process's own (memory, event loop), which moves by itself. */
  async function samples(): Promise<Map<string, number>> {
    const text = await (await fetch(server.metricsUrl)).text();
    const flowLines = text.split('\n').filter((line) => line.startsWith('latchkey_') && !/^latchkey_(process|nodejs)_/.test(line));
    return new Map(flowLines.map((line) => [line.slice(0, line.lastIndexOf(' ')), Number(line.slice(line.lastIndexOf(' ') + 1))]));
  }
  function moved(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
    const changes: Record<string, number> = {};
    for (const [name, value] of after) if (value !== (before.get(name) ?? 0)) changes[name] = value - (before.get(name) ?? 0);
    return changes;
  }

  it('code/send to an address with an account and to one without move the same counters by the same amounts', async () => {
    const registered = await call(server, 'POST', '/v1/user/register', { username: 'owner', password: 'correct horse', email: 'owner@example.test', zone: '86', phone: '13800000001' });
    assert.equal(registered.status, 201);
    const pairs = [
      [{ channel: 'email', to: 'owner@example.test', purpose: 'reset_password' }, { channel: 'email', to: 'nobody@example.test', purpose: 'reset_password' }],
      [{ channel: 'sms', to: '86-13800000001', purpose: 'login' }, { channel: 'sms', to: '86-13800000002', purpose: 'login' }],
    ];
    for (const [known, unknown] of pairs) {
      const start = await samples();
      assert.equal((await call(server, 'POST', '/v1/user/code/send', known)).status, 200);
      const afterKnown = await samples();
      assert.equal((await call(server, 'POST', '/v1/user/code/send', unknown)).status, 200);
      const afterUnknown = await samples();
      const byKnown = moved(start, afterKnown);
      assert.ok(Object.keys(byKnown).length > 0, 'code/send is counted');
      assert.deepEqual(moved(afterKnown, afterUnknown), byKnown);
    }
    const text = await (await fetch(server.metricsUrl)).text();
    assert.doesNotMatch(text, /suppressed/);
  });
});
