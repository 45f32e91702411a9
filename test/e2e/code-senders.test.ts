import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { call } from '../support/server.ts';
import { codeTestLimits, readOutbox, startCodeTestServer, type CodeTestServer } from '../support/codes.ts';
import { openAccountStore } from '../../src/adapters/db/open.ts';

const portOf = (address: string | AddressInfo | null): number => (typeof address === 'object' && address !== null ? address.port : 0);

describe('SMTP sender against a real SMTP server', () => {
  const mails: string[] = [];
  let smtp: SMTPServer;
  let server: CodeTestServer;
  before(async () => {
    smtp = new SMTPServer({
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      onAuth(auth, _session, callback) {
        if (auth.username === 'latchkey' && auth.password === 'relay secret') callback(null, { user: auth.username });
        else callback(new Error('bad credentials'));
      },
      onData(stream, _session, callback) {
        let text = '';
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => (text += chunk));
        stream.on('end', () => {
          mails.push(text);
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
    server = await startCodeTestServer({
      sender: {
        type: 'smtp',
        smtp: { host: '127.0.0.1', port: portOf(smtp.server.address()), user: 'latchkey', pass: 'relay secret', from: 'latchkey <no-reply@example.test>' },
      },
    });
  });
  after(async () => {
    await server.stop();
    await new Promise<void>((resolve) => smtp.close(() => resolve()));
  });

  it('mails the code, which then logs in', async () => {
    const sent = await call(server, 'POST', '/v1/user/code/send', { channel: 'email', to: 'Pat@Example.test', purpose: 'login' });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    const mail = mails.at(-1) ?? '';
    assert.match(mail, /^To: pat@example\.test/m);
    assert.match(mail, /^Subject: Your sign-in code/m);
    const code = /(\d{6}) is your code/.exec(mail)?.[1];
    assert.ok(code !== undefined, mail);
    const login = await call(server, 'POST', '/v1/user/code/login', { channel: 'email', to: 'pat@example.test', code, flag: 1 });
    assert.equal(login.status, 200);
  });

  it('SMTP cannot deliver SMS: appconfig says so and an SMS code is a 400', async () => {
    assert.deepEqual((await call(server, 'GET', '/v1/common/appconfig')).body.code_login, { sms: false, email: true });
    const answer = await call(server, 'POST', '/v1/user/code/send', { channel: 'sms', to: '86-13800000000', purpose: 'login' });
    assert.equal(answer.status, 400);
    assert.equal(answer.body.details.field, 'channel');
  });
});

describe('SMTP sender with a relay that refuses', () => {
  it('answers 503 upstream_unavailable and withdraws the code', async () => {
    const smtp = new SMTPServer({
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      onAuth: (_auth, _session, callback) => callback(new Error('bad credentials')),
    });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
    const server = await startCodeTestServer({
      sender: { type: 'smtp', smtp: { host: '127.0.0.1', port: portOf(smtp.server.address()), user: 'x', pass: 'y', from: 'no-reply@example.test' } },
    });
    try {
      const drawn = server.random.codes.length;
      const answer = await call(server, 'POST', '/v1/user/code/send', { channel: 'email', to: 'quinn@example.test', purpose: 'register' });
      assert.equal(answer.status, 503);
      assert.equal(answer.body.code, 'upstream_unavailable');
      const code = server.random.codes[drawn];
      const login = await call(server, 'POST', '/v1/user/code/login', { channel: 'email', to: 'quinn@example.test', code, flag: 1 });
      assert.equal(login.status, 410);
    } finally {
      await server.stop();
      await new Promise<void>((resolve) => smtp.close(() => resolve()));
    }
  });
});

interface Received {
  channel: string;
  to: string;
  code: string;
  purpose: string;
}

/** A stand-in SMS gateway: records every request; answers 500 for numbers ending in 99, hangs for 98. */
async function startGateway(): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server: HttpServer = createServer((request: IncomingMessage, response) => {
    let text = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (text += chunk));
    request.on('end', () => {
      const body = JSON.parse(text) as Received;
      received.push(body);
      if (body.to.endsWith('98')) return; // never answers
      response.writeHead(body.to.endsWith('99') ? 500 : 202).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${portOf(server.address())}/sms`,
    received,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

describe('webhook sender against a local HTTP gateway', () => {
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  let server: CodeTestServer;
  before(async () => {
    gateway = await startGateway();
    server = await startCodeTestServer({
      sender: { type: 'webhook', webhook: { url: gateway.url, timeout_ms: 300 } },
      code_login: { register_by_sms: true },
    });
  });
  after(async () => {
    await server.stop();
    await gateway.close();
  });

  it('posts {channel, to, code, purpose}; the code logs in', async () => {
    const sent = await call(server, 'POST', '/v1/user/code/send', { channel: 'sms', to: '86-13500000000', purpose: 'login' });
    assert.equal(sent.status, 200);
    const message = gateway.received.at(-1);
    assert.deepEqual(Object.keys(message ?? {}).sort(), ['channel', 'code', 'purpose', 'to']);
    assert.equal(message?.channel, 'sms');
    assert.equal(message?.to, '86-13500000000');
    assert.equal(message?.purpose, 'login');
    assert.match(message?.code ?? '', /^\d{6}$/);
    const login = await call(server, 'POST', '/v1/user/code/login', { channel: 'sms', to: '86-13500000000', code: message?.code, flag: 0 });
    assert.equal(login.status, 200);
  });

  it('a gateway 500 is 503 upstream_unavailable, that code is dead, and the user may ask again at once', async () => {
    const answer = await call(server, 'POST', '/v1/user/code/send', { channel: 'sms', to: '86-13500000099', purpose: 'login' });
    assert.equal(answer.status, 503);
    assert.equal(answer.body.code, 'upstream_unavailable');
    const code = gateway.received.at(-1)?.code;
    assert.match(code ?? '', /^\d{6}$/, 'the gateway saw the code before failing');
    const login = await call(server, 'POST', '/v1/user/code/login', { channel: 'sms', to: '86-13500000099', code, flag: 0 });
    assert.equal(login.status, 410);
    assert.equal(login.body.code, 'expired');
    const retry = await call(server, 'POST', '/v1/user/code/send', { channel: 'sms', to: '86-13500000099', purpose: 'login' });
    assert.equal(retry.status, 503, 'not 429: a failed delivery does not start the cooldown');
  });

  it('a gateway that does not answer in timeout_ms is 503 too', async () => {
    const started = Date.now();
    const answer = await call(server, 'POST', '/v1/user/code/send', { channel: 'sms', to: '86-13500000098', purpose: 'login' });
    assert.equal(answer.status, 503);
    assert.ok(Date.now() - started < 5000);
  });
});

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Runs `latchkey serve` as a child at log level trace, drives `work` against it, and returns
 * everything it wrote to stdout and stderr: the real logger, redaction and all.
 */
async function withServeLogs(config: Record<string, unknown>, work: (url: string, dataDir: string) => Promise<void>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-codelogs-'));
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({
    port: 0, metrics: { port: 0 }, log_level: 'trace', data_dir: dir, password: { memory_cost: 1024, time_cost: 1 }, rate_limits: codeTestLimits, ...config,
  }));
  const child = spawn(process.execPath, [join(REPO_ROOT, 'src', 'cli.ts'), 'serve', '--config', file], {
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line:\n${output}`)), 60_000); // 10-15 s on a loaded machine
      const onData = (chunk: Buffer) => {
        output += chunk.toString('utf8');
        const match = /"url":"(http:[^"]+)"/.exec(output);
        if (match?.[1] !== undefined) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      child.once('exit', () => reject(new Error(`exited early:\n${output}`)));
    });
    await work(url, dir);
  } finally {
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
  return output;
}

describe('codes never reach the logs', () => {
  it('console sender: send, wrong guess, login, reset — no code in any log line, only in the outbox', async () => {
    const codes: string[] = [];
    const logs = await withServeLogs({}, async (url, dataDir) => {
      const base = { url };
      const post = (path: string, body: unknown) => call(base, 'POST', path, body);
      const rita = await post('/v1/user/register', { username: 'rita', password: 'correct horse', email: 'rita@example.test' });
      assert.equal(rita.status, 201);
      // Only a proven address can reset: rita proved hers earlier (a verify code is one more code per
      // destination and minute than this test's cooldown allows, so it is marked in the database).
      const accounts = await openAccountStore(`sqlite:${join(dataDir, 'latchkey.db')}`);
      await accounts.repo.markVerified(rita.body.uid, { channel: 'email', email: 'rita@example.test' }, Date.now());
      await accounts.close();
      assert.equal((await post('/v1/user/code/send', { channel: 'email', to: 'rita@example.test', purpose: 'reset_password' })).status, 200);
      assert.equal((await post('/v1/user/code/send', { channel: 'email', to: 'sam@example.test', purpose: 'login' })).status, 200);
      assert.equal((await post('/v1/user/code/send', { channel: 'sms', to: '86-13400000000', purpose: 'login' })).status, 200);
      const outbox = readOutbox(dataDir);
      codes.push(...outbox.map((entry) => entry.code));
      const reset = outbox.find((e) => e.to === 'rita@example.test')?.code;
      const login = outbox.find((e) => e.to === 'sam@example.test')?.code;
      assert.ok(reset !== undefined && login !== undefined);
      const wrong = login === '000000' ? '000001' : '000000';
      assert.equal((await post('/v1/user/code/login', { channel: 'email', to: 'sam@example.test', code: wrong, flag: 1 })).status, 401);
      assert.equal((await post('/v1/user/code/login', { channel: 'email', to: 'sam@example.test', code: login, flag: 1 })).status, 200);
      assert.equal((await post('/v1/user/code/login', { channel: 'email', to: 'sam@example.test', code: login, flag: 1 })).status, 410);
      assert.equal((await post('/v1/user/pwdforget', { channel: 'email', to: 'rita@example.test', code: reset, new_password: 'short' })).status, 400);
      assert.equal((await post('/v1/user/pwdforget', { channel: 'email', to: 'rita@example.test', code: reset, new_password: 'new password!' })).status, 200);
    });
    assert.equal(codes.length, 2, 'the SMS login code to an unknown number was not delivered');
    assert.match(logs, /one-time code written to the outbox/, 'the console sender did log');
    assertNoCodes(logs, codes);
  });

  it('webhook sender: a failing gateway is logged without the code', async () => {
    const gateway = await startGateway();
    try {
      const logs = await withServeLogs({ sender: { type: 'webhook', webhook: { url: gateway.url } } }, async (url) => {
        const answer = await call({ url }, 'POST', '/v1/user/code/send', { channel: 'email', to: 'tom@example.test99', purpose: 'register' });
        assert.equal(answer.status, 503);
      });
      assert.match(logs, /one-time code not delivered/);
      assert.match(logs, /webhook answered 500/);
      assertNoCodes(logs, gateway.received.map((r) => r.code));
    } finally {
      await gateway.close();
    }
  });
});

function assertNoCodes(logs: string, codes: readonly string[]): void {
  assert.ok(logs.split('\n').length > 3, `the child logged something:\n${logs}`);
  for (const code of codes) {
    const line = logs.split('\n').find((l) => l.includes(code));
    assert.equal(line, undefined, `code ${code} appears in a log line`);
  }
}
