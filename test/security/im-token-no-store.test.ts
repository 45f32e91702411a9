/**
 * docs/security.md hole 14 (secrets without Cache-Control: no-store): GET /v1/user/im_token answers a secret (the IM token that lets a device onto
 * WuKongIM). Without `Cache-Control: no-store` a shared or browser cache may keep it after logout,
 * where the next user of the machine, or a proxy, can read it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call } from '../support/server.ts';
import { MANAGER_TOKEN, startImNode, type ImTestNode } from '../support/im-node.ts';
import { WukongImDouble } from '../support/wukongim-double.ts';

const PASSWORD = 'correct horse battery';
const WEB = 1;

describe('GET /v1/user/im_token is never cached', () => {
  let double: WukongImDouble;
  let node: ImTestNode;

  before(async () => {
    double = await WukongImDouble.start({ managerToken: MANAGER_TOKEN });
    node = await startImNode(double);
  });
  after(async () => {
    await node?.stop();
    await double?.close();
  });

  it('answers Cache-Control: no-store', async () => {
    const registered = await call(node, 'POST', '/v1/user/register', { username: `nostore${process.pid}`, password: PASSWORD, flag: WEB });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    const answers = await Promise.all([1, 2, 3].map(() => call(node, 'GET', '/v1/user/im_token', undefined, registered.body.token)));
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.equal(answer.body.im_token, registered.body.im_token);
      assert.match(answer.headers.get('cache-control') ?? '', /\bno-store\b/);
    }
  });
});
