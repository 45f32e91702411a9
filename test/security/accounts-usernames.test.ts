/**
 * Lookalike usernames are one account, not several: `ａｌｉｃｅ` (fullwidth), `ALICE`, and an `é`
 * typed decomposed all name the same account, and a name mixing scripts (`аlice` with a Cyrillic
 * `а`) is refused, so nobody can sit in a contact list looking like someone else.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { call, startTestServer, type TestServer } from '../support/server.ts';

const PASSWORD = 'correct horse battery';

describe('usernames are normalised and single-script', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.stop();
  });

  const register = (username: string) => call(server, 'POST', '/v1/user/register', { username, password: PASSWORD, flag: 1 });

  it('fullwidth and case variants of a taken name are refused, even all at once', async () => {
    assert.equal((await register('alice')).status, 201);
    const lookalikes = ['ａｌｉｃｅ', 'ＡＬＩＣＥ', 'Alice', 'aｌice'];
    const answers = await Promise.all(lookalikes.map(register));
    for (const [i, answer] of answers.entries()) {
      assert.equal(answer.status, 409, `${lookalikes[i]}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.details.field, 'username');
    }
  });

  it('a fullwidth spelling logs into the same account', async () => {
    const login = await call(server, 'POST', '/v1/user/login', { username: 'ａｌｉｃｅ', password: PASSWORD, flag: 1 });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    assert.equal(login.body.username, 'alice');
  });

  it('composed and decomposed accents are one name, stored composed', async () => {
    const decomposed = 'rene\u0301e';
    const composed = 'ren\u00e9e';
    const first = await register(decomposed);
    assert.equal(first.status, 201, JSON.stringify(first.body));
    assert.equal(first.body.username, composed);
    const second = await register(composed);
    assert.equal(second.status, 409);
    const concurrent = await Promise.all([register('zoe\u0308'), register('zo\u00eb')]);
    assert.deepEqual(concurrent.map((a) => a.status).sort(), [201, 409]);
  });

  it('names mixing Latin with Cyrillic or Greek are refused; one script, or Japanese kana with kanji, is fine', async () => {
    for (const mixed of ['\u0430lice', 'p\u0430ypal', 'b\u03bfb']) {
      const answer = await register(mixed);
      assert.equal(answer.status, 400, `${mixed}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.details.field, 'username');
    }
    for (const fine of ['\u0430\u043b\u0438\u0441\u0430', '\u03b1\u03bb\u03b9\u03ba\u03b7', '\u3084\u307e\u7530\u30bf\u30ed\u30a6', 'bob_2']) {
      const answer = await register(fine);
      assert.equal(answer.status, 201, `${fine}: ${JSON.stringify(answer.body)}`);
    }
  });
});
