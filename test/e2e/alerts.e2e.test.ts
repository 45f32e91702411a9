/**
 * The new-device alert and its one-time "sign out everywhere" link (src/flows/alerts/new-device.ts),
 * end to end: the console sender's outbox captures the mail. On the embedded stores (SQLite Kv, whose
 * TTL follows the test's clock) and on Redis (its TTL read back, and a real GETDEL race).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { call } from '../support/server.ts';
import { lastCode, readOutbox, startCodeTestServer, type CodeTestServer } from '../support/codes.ts';
import { deleteRedisKeys } from '../support/redis.ts';
import { REDIS_URL, skipUnless, uniquePrefix } from '../support/services.ts';

const PUBLIC_URL = 'https://login.example.test';
const DAY_MS = 24 * 60 * 60 * 1000;
const PASSWORD = 'correct horse battery';

interface Notice { kind?: string; to: string; subject?: string; text?: string }

function notices(server: CodeTestServer): Notice[] {
  return (readOutbox(server.dataDir) as unknown as Notice[]).filter((entry) => entry.kind === 'new_device');
}

function linkToken(notice: Notice | undefined): string {
  const match = /https:\/\/login\.example\.test\/signout-everywhere\?t=([A-Za-z0-9_-]+)/.exec(notice?.text ?? '');
  assert.ok(match?.[1] !== undefined, `a link in ${JSON.stringify(notice)}`);
  return match[1];
}

async function register(server: CodeTestServer, username: string, email: string): Promise<string> {
  const answer = await call(server, 'POST', '/v1/user/register', {
    username, password: PASSWORD, name: username, email, flag: 0, device: { device_id: `${username}-phone`, device_name: 'Pixel 9', device_model: 'Google Pixel 9' },
  });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return answer.body.uid as string;
}

async function login(server: CodeTestServer, username: string, deviceId: string, name = 'Work laptop', model = 'ThinkPad X1'): Promise<string> {
  const answer = await call(server, 'POST', '/v1/user/login', {
    username, password: PASSWORD, flag: 1, device: { device_id: deviceId, device_name: name, device_model: model },
  });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  await server.runtime.alerts.settled();
  return answer.body.token as string;
}

const signOut = (server: CodeTestServer, token: unknown) => call(server, 'POST', '/v1/user/alerts/sign_out_everywhere', { token });

for (const store of ['embedded', 'redis'] as const) {
  describe(`new-device alert (${store})`, { skip: store === 'redis' ? await skipUnless('redis') : false }, () => {
    const prefix = uniquePrefix('alerts');
    let server: CodeTestServer;
    let uid: string;
    before(async () => {
      server = await startCodeTestServer({
        alerts: { new_device: true }, public_url: PUBLIC_URL,
        ...(store === 'redis' ? { store: REDIS_URL, store_prefix: prefix } : {}),
      });
      uid = await register(server, 'wen', 'Wen@Example.test');
      await server.runtime.accounts.markVerified(uid, { channel: 'email', email: 'Wen@Example.test' }, Date.now());
      await server.runtime.alerts.settled();
    });
    after(async () => {
      await server?.stop();
      if (store === 'redis') await deleteRedisKeys(prefix);
    });

    it('an account\'s first device is not new: no mail, even to an address proven by that very sign-up', async () => {
      // A one-time code by email makes the account with its address verified, on its first device.
      const to = 'cy@example.test';
      const codeLogin = async (deviceId: string): Promise<void> => {
        assert.equal((await call(server, 'POST', '/v1/user/code/send', { channel: 'email', to, purpose: 'login' })).status, 200);
        const answer = await call(server, 'POST', '/v1/user/code/login', {
          channel: 'email', to, code: lastCode(server.dataDir, to), flag: 1, device: { device_id: deviceId, device_name: 'Firefox on Linux', device_model: 'Firefox 140' },
        });
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        await server.runtime.alerts.settled();
      };
      await codeLogin('cy-first');
      const cy = await server.runtime.accounts.findByEmail(to);
      assert.equal(cy?.emailVerified, true);
      assert.deepEqual(notices(server), []);
    });

    it('mails the verified address once for a new device, and not again for the same device', async () => {
      await login(server, 'wen', 'laptop-1');
      const sent = notices(server).filter((n) => n.to !== 'cy@example.test');
      assert.equal(sent.length, 1);
      assert.equal(sent[0]?.to, 'wen@example.test');
      assert.match(sent[0]?.text ?? '', /^New sign-in on Work laptop \/ ThinkPad X1 from 127\.0\.0\.1 at \d{4}-\d\d-\d\d \d\d:\d\d UTC; not you\? /);
      linkToken(sent[0]);
      const count = notices(server).length;
      await login(server, 'wen', 'laptop-1');
      assert.equal(notices(server).length, count, 'the same device again: no mail');
      const audit = await server.runtime.accounts.queryAudit({ uid, type: 'new_device_alert', limit: 10 });
      assert.equal(audit.length, 1);
    });

    let ugo = '';
    it('never mails an unverified address', async () => {
      await register(server, 'ugo', 'ugo@example.test');
      ugo = await login(server, 'ugo', 'ugo-laptop');
      assert.deepEqual(notices(server).filter((n) => n.to === 'ugo@example.test'), []);
    });

    it('the link ends every session of the account once; the second use is 410 expired', async () => {
      const before = notices(server).length;
      const laptop = await login(server, 'wen', 'laptop-2');
      const token = linkToken(notices(server)[before]);
      assert.equal(token.length, 43, '32 random bytes');
      const first = await signOut(server, token);
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.ok(first.body.revoked >= 3, `phone, laptop-1 twice, laptop-2: ${first.body.revoked}`);
      const current = await call(server, 'GET', '/v1/user/current', undefined, laptop);
      assert.equal(current.status, 401);
      assert.equal(current.body.details?.reason, 'revoked', 'a public tombstone reason (docs/api.md §3)');
      assert.equal((await call(server, 'GET', '/v1/user/current', undefined, ugo)).status, 200, 'another account is untouched');
      const again = await signOut(server, token);
      assert.equal(again.status, 410);
      assert.equal(again.body.code, 'expired');
      const audit = await server.runtime.accounts.queryAudit({ uid, type: 'revoke', limit: 10 });
      assert.ok(audit.some((event) => /^alert:all:\d+$/.test(event.reason ?? '')), JSON.stringify(audit));
    });

    it('an outsider\'s guess is refused: malformed 400, well-formed but unknown 410', async () => {
      assert.equal((await signOut(server, 'abc')).status, 400);
      assert.equal((await signOut(server, 123)).status, 400);
      assert.equal((await call(server, 'POST', '/v1/user/alerts/sign_out_everywhere', {})).status, 400);
      const guess = await signOut(server, Buffer.alloc(32, 7).toString('base64url'));
      assert.equal(guess.status, 410);
      assert.equal(guess.body.code, 'expired');
      // The Kv keeps the secret's SHA-256 only: someone who reads the store holds no usable link.
      const before = notices(server).length;
      await login(server, 'wen', 'laptop-guess');
      const token = linkToken(notices(server)[before]);
      const { createHash } = await import('node:crypto');
      assert.equal((await signOut(server, createHash('sha256').update(token).digest('base64url'))).status, 410);
      assert.equal((await signOut(server, token)).status, 200, 'the real link still works after the guesses');
    });

    it('two submissions at once: exactly one ends the sessions', async () => {
      const before = notices(server).length;
      await login(server, 'wen', 'laptop-3');
      await login(server, 'wen', 'laptop-4');
      const token = linkToken(notices(server)[before + 1]);
      const alertRevokes = async () => (await server.runtime.accounts.queryAudit({ uid, type: 'revoke', limit: 100 }))
        .filter((event) => event.reason?.startsWith('alert:')).length;
      const earlier = await alertRevokes();
      const answers = await Promise.all(Array.from({ length: 6 }, () => signOut(server, token)));
      assert.deepEqual(answers.map((a) => a.status).sort(), [200, 410, 410, 410, 410, 410]);
      assert.equal(await alertRevokes(), earlier + 1, 'one revocation');
    });

    it('a link lives 24 hours', async () => {
      const before = notices(server).length;
      await login(server, 'wen', 'laptop-5');
      const token = linkToken(notices(server)[before]);
      if (store === 'embedded') {
        server.clock.advance(DAY_MS + 1000);
        assert.equal((await signOut(server, token)).status, 410, 'dead after 24 h');
      } else {
        const { createHash } = await import('node:crypto');
        const ttl = await server.runtime.kv.pttl(`alert:signout:${createHash('sha256').update(token).digest('base64url')}`);
        assert.ok(ttl !== null && ttl > DAY_MS - 60_000 && ttl <= DAY_MS, `ttl ${ttl}`);
        assert.equal((await signOut(server, token)).status, 200);
      }
    });
  });
}

describe('new-device alert: off by default, and without public_url no link', () => {
  it('sends nothing unless alerts.new_device is true', async () => {
    const server = await startCodeTestServer();
    try {
      const uid = await register(server, 'ada', 'ada@example.test');
      await server.runtime.accounts.markVerified(uid, { channel: 'email', email: 'ada@example.test' }, Date.now());
      await login(server, 'ada', 'ada-laptop');
      assert.deepEqual(notices(server), []);
    } finally {
      await server.stop();
    }
  });

  it('without public_url the mail says what to do, with no link and no secret stored', async () => {
    const server = await startCodeTestServer({ alerts: { new_device: true } });
    try {
      const uid = await register(server, 'bo', 'bo@example.test');
      await server.runtime.accounts.markVerified(uid, { channel: 'email', email: 'bo@example.test' }, Date.now());
      await login(server, 'bo', 'bo-laptop');
      const sent = notices(server);
      assert.equal(sent.length, 1);
      assert.doesNotMatch(sent[0]?.text ?? '', /https?:/);
      assert.match(sent[0]?.text ?? '', /Sign out everywhere else/);
    } finally {
      await server.stop();
    }
  });
});

describe('new-device alert through a real SMTP server', () => {
  it('mails the verified address with its subject and link; a slow relay does not slow the login, a refusing one does not fail it', async () => {
    const { SMTPServer } = await import('smtp-server');
    const mails: string[] = [];
    let refuse = false;
    let slowMs = 0;
    const smtp = new SMTPServer({
      disabledCommands: ['STARTTLS', 'AUTH'],
      onData(stream, _session, callback) {
        let text = '';
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => (text += chunk));
        stream.on('end', () => {
          if (refuse) return callback(new Error('mailbox full'));
          mails.push(text);
          setTimeout(() => callback(), slowMs);
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
    const address = smtp.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const server = await startCodeTestServer({
      alerts: { new_device: true }, public_url: PUBLIC_URL,
      sender: { type: 'smtp', smtp: { host: '127.0.0.1', port, from: 'latchkey <no-reply@example.test>' } },
    });
    try {
      const uid = await register(server, 'dee', 'dee@example.test');
      await server.runtime.accounts.markVerified(uid, { channel: 'email', email: 'dee@example.test' }, Date.now());
      await login(server, 'dee', 'dee-laptop');
      assert.equal(mails.length, 1);
      assert.match(mails[0] ?? '', /^To: dee@example\.test\r?$/m);
      assert.match(mails[0] ?? '', /^Subject: New sign-in to your account/m);
      assert.match(mails[0] ?? '', /signout-everywhere\?t=/);
      // A relay that takes 3 s to accept: the login answers long before.
      slowMs = 3000;
      const started = performance.now();
      const slow = await call(server, 'POST', '/v1/user/login', {
        username: 'dee', password: PASSWORD, flag: 1, device: { device_id: 'dee-desktop', device_name: 'Desk', device_model: 'iMac' },
      });
      assert.equal(slow.status, 200);
      assert.ok(performance.now() - started < 1500, `the login waited ${Math.round(performance.now() - started)} ms for the mail`);
      await server.runtime.alerts.settled();
      assert.equal(mails.length, 2);
      slowMs = 0;
      refuse = true;
      await login(server, 'dee', 'dee-tablet');
      assert.equal(mails.length, 2, 'refused, logged, and the login answered 200 all the same');
    } finally {
      await server.stop();
      await new Promise<void>((resolve) => smtp.close(() => resolve()));
    }
  });
});
