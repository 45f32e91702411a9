/**
 * Hole 14 (part): `im.wukongim.api_url` with a path prefix. WuKongIM is often published behind a
 * reverse proxy under a prefix (`https://host/im-api/`); resolving `/user/token` against it dropped
 * the prefix, so latchkey sent the manager token and users' IM tokens to whatever else the proxy
 * serves at `/user/token` of that host, and the IM server never heard of logouts or bans.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { WukongImBridge } from '../../src/adapters/wukongim/wukongim-bridge.ts';

describe('im.wukongim.api_url keeps its path prefix', () => {
  let server: Server;
  let origin = '';
  const seen: string[] = [];

  before(async () => {
    server = createServer((request, response) => {
      seen.push(request.url ?? '');
      request.resume();
      request.on('end', () => response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":200}'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    origin = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const cases: [string, string][] = [
    ['/im-api/', '/im-api'],
    ['/im-api', '/im-api'],
    ['/a/b/', '/a/b'],
    ['', ''],
    ['/', ''],
  ];
  for (const [suffix, prefix] of cases) {
    it(`api_url "<origin>${suffix}" calls ${prefix}/user/token and ${prefix}/user/device_quit`, async () => {
      seen.length = 0;
      const bridge = new WukongImBridge({ apiUrl: origin + suffix, managerToken: 'm', timeoutMs: 2000 });
      await Promise.all([
        bridge.updateToken({ uid: 'u1', token: 'a'.repeat(32), flag: 1, level: 'slave' }),
        bridge.deviceQuit('u1', -1),
      ]);
      assert.deepEqual(seen.sort(), [`${prefix}/user/device_quit`, `${prefix}/user/token`]);
    });
  }
});
