/**
 * OWASP ASVS 5.0, chapter V6 (authentication), level 2, at the HTTP edge: one test per requirement
 * latchkey covers that had no test of its own. docs/security.md §3 maps the rest.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { call, startTestServer, type TestServer } from '../support/server.ts';

let counter = 0;
const uniqueName = (stem: string) => `${stem}${process.pid}x${++counter}`;

describe('ASVS V6 authentication', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.stop();
  });

  const register = (password: string, username = uniqueName('pw')) =>
    call(server, 'POST', '/v1/user/register', { username, password, flag: 1 });
  const login = (username: string, password: string) => call(server, 'POST', '/v1/user/login', { username, password, flag: 1 });

  it('6.2.1: a password shorter than 8 characters is refused, naming the field', async () => {
    const answer = await register('seven77');
    assert.equal(answer.status, 400);
    assert.equal(answer.body.details.field, 'password');
    assert.equal((await register('eight888x')).status, 201);
  });

  it('6.2.2 and 6.2.3: the password changes only with the current one', async () => {
    const username = uniqueName('change');
    const { body } = await register('first secret phrase', username);
    const wrong = await call(server, 'PUT', '/v1/user/updatepassword', { password: 'not the password', new_password: 'second secret phrase' }, body.token);
    assert.equal(wrong.status, 401);
    assert.equal((await login(username, 'first secret phrase')).status, 200);
    const missing = await call(server, 'PUT', '/v1/user/updatepassword', { new_password: 'second secret phrase' }, body.token);
    assert.equal(missing.status, 400);
    const right = await call(server, 'PUT', '/v1/user/updatepassword', { password: 'first secret phrase', new_password: 'second secret phrase' }, body.token);
    assert.equal(right.status, 200);
    assert.equal((await login(username, 'second secret phrase')).status, 200);
    assert.equal((await login(username, 'first secret phrase')).status, 401);
  });

  it('6.2.4: registration and password change refuse a common password', async () => {
    const refused = await register('iloveyou1');
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.details.field, 'password');
    const { body } = await register('a rarely chosen phrase');
    const change = await call(server, 'PUT', '/v1/user/updatepassword', { password: 'a rarely chosen phrase', new_password: 'password123' }, body.token);
    assert.equal(change.status, 400);
    assert.equal(change.body.details.field, 'new_password');
  });

  it('6.2.11: a password built on the username is refused', async () => {
    const username = uniqueName('marguerite');
    const answer = await register(`${username}!2024`, username);
    assert.equal(answer.status, 400, JSON.stringify(answer.body));
    assert.equal(answer.body.details.field, 'password');
  });

  it('6.2.5: passwords of any composition are accepted: only letters, only digits that are not common, symbols, any script', async () => {
    for (const password of ['onlylowercaseletters', '8350291746', '#%&*()!@$^', 'пароль на кириллице', '密码是很长的一句话']) {
      const answer = await register(password);
      assert.equal(answer.status, 201, `${password}: ${JSON.stringify(answer.body)}`);
    }
  });

  it('6.2.8: the password is checked exactly as typed: no trimming, no case folding, no truncation', async () => {
    const username = uniqueName('exact');
    const password = '  Mixed Case With Spaces  ' + 'x'.repeat(90);
    assert.equal((await register(password, username)).status, 201);
    assert.equal((await login(username, password)).status, 200);
    for (const variant of [password.trim(), password.toLowerCase(), password.toUpperCase(), password.slice(0, 72), password.slice(0, -1)]) {
      assert.equal((await login(username, variant)).status, 401, JSON.stringify(variant.slice(0, 30)));
    }
  });

  it('6.2.9: passwords of 64 and up to 128 characters are accepted; longer ones are a 400, not a 500', async () => {
    assert.equal((await register('q'.repeat(40) + 'w'.repeat(24))).status, 201);
    assert.equal((await register('q'.repeat(64) + 'w'.repeat(64))).status, 201);
    assert.equal((await register('q'.repeat(129))).status, 400);
  });

  it('6.1.3: a banned account is refused by the password pathway as by the others (codes: test/e2e/codes.e2e.test.ts)', async () => {
    const username = uniqueName('banned');
    const { body } = await call(server, 'POST', '/v1/user/register', { username, password: 'a long enough phrase', flag: 1 });
    await server.runtime.accounts.setStatus(body.uid, 'banned', Date.now());
    const password = await login(username, 'a long enough phrase');
    assert.equal(password.status, 403);
    assert.equal(password.body.code, 'account_disabled');
  });
});

describe('ASVS 6.2.6 and 6.2.7: the console\'s password fields', () => {
  it('every password field of every page is masked, named for password managers, and lets paste through', () => {
    const pages = readdirSync('src/console').filter((name) => name.endsWith('.html'));
    let fields = 0;
    for (const page of pages) {
      const html = readFileSync(`src/console/${page}`, 'utf8');
      assert.doesNotMatch(html, /onpaste|oncopy/i, page);
      for (const [input] of html.matchAll(/<input[^>]*id="(?:[a-z]+-)?password"[^>]*>/g)) {
        fields += 1;
        assert.match(input, /type="password"/, `${page}: ${input}`);
        assert.match(input, /autocomplete="(current|new)-password"/, `${page}: ${input}`);
      }
    }
    assert.ok(fields >= 4, `found ${fields} password fields`);
  });
});
