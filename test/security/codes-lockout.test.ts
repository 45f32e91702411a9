/**
 * docs/security.md hole 7: anyone could lock an address out of one-time codes. Five sends from anywhere used
 * up the destination's hourly quota and its 60 s cooldown, and a stranger's send replaced the code
 * in the owner's inbox.
 */
import { after, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { codeTestLimits, lastCode, readOutbox, startCodeTestServer, type CodeTestServer } from '../support/codes.ts';
import type { Answer } from '../support/server.ts';

const OWNER_IP = '198.51.100.7';
const STRANGER_IP = '203.0.113.9';
const MINUTE = 61_000;

/** A request from `ip` (the server believes X-Forwarded-For: trust_proxy is on). */
async function from(server: CodeTestServer, ip: string, path: string, body: unknown): Promise<Answer> {
  const response = await fetch(server.url + path, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': ip }, body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json(), headers: response.headers };
}

describe('a stranger cannot lock an address out of one-time codes', () => {
  let server: CodeTestServer | undefined;
  const servers: CodeTestServer[] = [];
  beforeEach(async () => {
    server = await startCodeTestServer({
      trust_proxy: true,
      rate_limits: { ...codeTestLimits, code_send_to: { max: 5, window_seconds: 3600 }, code_send_to_all: { max: 10, window_seconds: 3600 } },
    });
    servers.push(server);
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });
  const node = (): CodeTestServer => {
    assert.ok(server !== undefined);
    return server;
  };
  const send = (ip: string, to: string) => from(node(), ip, '/v1/user/code/send', { channel: 'email', to, purpose: 'login' });
  const login = (ip: string, to: string, code: string) => from(node(), ip, '/v1/user/code/login', { channel: 'email', to, code, flag: 1 });

  it("a stranger's sends use up neither the owner's hourly quota nor the owner's cooldown", async () => {
    const to = 'victim@example.test';
    for (let minute = 0; minute < 5; minute++) {
      const burst = await Promise.all(Array.from({ length: 10 }, () => send(STRANGER_IP, to)));
      assert.equal(burst.filter((a) => a.status === 200).length, 1, 'one send per minute per requester');
      node().clock.advance(MINUTE);
    }
    assert.equal((await send(STRANGER_IP, to)).status, 429, "the stranger's own hourly quota is spent");
    const mine = await send(OWNER_IP, to);
    assert.equal(mine.status, 200, JSON.stringify(mine.body));
    const signedIn = await login(OWNER_IP, to, lastCode(node().dataDir, to));
    assert.equal(signedIn.status, 200, JSON.stringify(signedIn.body));
  });

  it("the code in the owner's inbox still works after a stranger's sends, accepted and refused", async () => {
    const to = 'owner@example.test';
    assert.equal((await send(OWNER_IP, to)).status, 200);
    const mine = lastCode(node().dataDir, to);
    node().clock.advance(MINUTE); // past the cooldown, well within the code's five minutes
    const burst = await Promise.all(Array.from({ length: 20 }, () => send(STRANGER_IP, to)));
    assert.equal(burst.filter((a) => a.status === 200).length, 1);
    assert.ok(burst.every((a) => a.status === 200 || a.status === 429), burst.map((a) => a.status).join(','));
    const signedIn = await login(OWNER_IP, to, mine);
    assert.equal(signedIn.status, 200, `the owner's code was replaced: ${JSON.stringify(signedIn.body)}`);
  });

  it('past the shared ceiling, sends are refused and the newest code out stays usable', async () => {
    const to = 'popular@example.test';
    const ips = Array.from({ length: 14 }, (_, i) => `192.0.2.${i + 1}`);
    const answers = await Promise.all(ips.map((ip) => send(ip, to)));
    const statuses = answers.map((a) => a.status);
    assert.equal(statuses.filter((s) => s === 200).length, 10, `code_send_to_all bounds what the address costs: ${statuses.join(',')}`);
    assert.equal(statuses.filter((s) => s === 429).length, 4);
    assert.equal(readOutbox(node().dataDir).filter((e) => e.to === to).length, 10, 'nothing sent for a refused request');
    const signedIn = await login(OWNER_IP, to, lastCode(node().dataDir, to));
    assert.equal(signedIn.status, 200, 'a refused send did not burn or replace the newest code');
  });

  it('addresses in one IPv6 /64 are one requester', async () => {
    const to = 'v6@example.test';
    assert.equal((await send('2001:db8:1:2::10', to)).status, 200);
    const sameNet = await send('2001:db8:1:2:ffff::99', to);
    assert.equal(sameNet.status, 429);
    assert.equal(sameNet.body.code, 'rate_limited');
    assert.equal((await send('2001:db8:1:3::10', to)).status, 200, 'another /64 is another requester');
  });
});
