/**
 * Hole 1 (critical): SSO account takeover through `return_to`. The check ran on the string as
 * given, but the callback re-parsed it with `new URL`, which removes dot segments: `/.//evil/x`
 * passed as "one leading slash" and went out as `Location: //evil/x?lk_code=…`, handing the
 * handoff code to whoever wrote the link (who also chose the app_challenge, so holds the verifier).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Browser, PROVIDER, authorize, passIdp, startSsoWorld, visitCallback, type SsoWorld } from '../support/idp.ts';
import { validateReturnTo, withParameter } from '../../src/flows/oidc/return-to.ts';
import { s256 } from '../../src/flows/oidc/binding.ts';

const LISTED = ['app.test', 'localhost', 'app.test:8443', '127.0.0.1'];
const LATCHKEY = 'https://latchkey.test';

/**
 * Each resolves, by the WHATWG parser a browser uses (it drops tabs and newlines, reads `\` as `/`
 * and `%2e` as `.`), to a path starting with `//`: another host.
 */
const DOT_SEGMENT_ESCAPES = [
  '/.//evil.example/x',
  '/..//evil.example/x',
  '/a/..//evil.example/x',
  '/%2e//evil.example/x',
  '/%2E//evil.example/x',
  '/%2e/%2e//evil.example/x',
  '/%2e%2e//evil.example/x',
  '/.%2e//evil.example/x',
  '/%2e./%2e%2E//evil.example/x',
  '/./%2e//evil.example?x=1#y',
  '/./\\/evil.example',
  '/.\\/evil.example',
  '/%2e/\\evil.example',
  '/.//evil.example:443/x',
  '/.\t//evil.example',
  '/.\n/\r/evil.example',
  '/.//%65vil.example/x',
  '/./..//./evil.example/x',
];

describe('SSO return_to cannot send the handoff code off latchkey', () => {
  let world: SsoWorld;
  before(async () => {
    world = await startSsoWorld({ provider: { return_to_hosts: LISTED } });
  });
  after(async () => {
    await world.stop();
  });

  it('dot-segment and backslash escapes are refused at authorize, fired in parallel', async () => {
    const answers = await Promise.all(DOT_SEGMENT_ESCAPES.map((returnTo) => authorize(new Browser(), world.server, { return_to: returnTo })));
    for (const [index, answer] of answers.entries()) {
      assert.equal(answer.status, 400, `${DOT_SEGMENT_ESCAPES[index]} → ${answer.status} ${answer.headers.get('location')}`);
      const body = (await answer.json()) as { code: string; details?: { field: string } };
      assert.equal(body.code, 'invalid_request');
      assert.equal(body.details?.field, 'return_to');
      assert.equal(answer.headers.get('location'), null);
      assert.equal(answer.headers.get('set-cookie'), null, 'nothing is started for a refused request');
    }
  });

  it('an absolute return_to over http is refused on a listed non-loopback host, accepted on loopback', async () => {
    for (const returnTo of ['http://app.test/x', 'http://app.test:8443/x', 'HTTP://APP.TEST/x', 'http:app.test/x']) {
      const answer = await authorize(new Browser(), world.server, { return_to: returnTo });
      assert.equal(answer.status, 400, returnTo);
    }
    for (const returnTo of ['http://localhost:3000/cb', 'http://127.0.0.1/cb', 'https://app.test/x', 'https://app.test:8443/x']) {
      const answer = await authorize(new Browser(), world.server, { return_to: returnTo });
      assert.equal(answer.status, 302, returnTo);
    }
  });

  it('a path with harmless dot segments is stored normalised and the callback sends exactly that path', async () => {
    const browser = new Browser();
    const started = await authorize(browser, world.server, { return_to: '/app/./deep/../home?tab=1' });
    assert.equal(started.status, 302);
    const callback = await visitCallback(browser, await passIdp(browser, started.headers.get('location') ?? '', 'ada'));
    assert.match(callback.location, /^\/app\/home\?tab=1&lk_code=[A-Za-z0-9_-]{43}$/);
  });

  it('the callback refuses a stored return_to that would leave latchkey (defence in depth)', async () => {
    for (const planted of ['/.//evil.example/x', '//evil.example/x', 'https://evil.example/x', 'http://app.test/x']) {
      const browser = new Browser();
      const started = await authorize(browser, world.server, { return_to: '/fine' });
      const authorizationUrl = started.headers.get('location') ?? '';
      // A state written before this fix, or by any future path around the authorize check.
      const key = `oidc:state:${s256(new URL(authorizationUrl).searchParams.get('state') ?? '')}`;
      const { kv } = world.server.runtime;
      const stored = JSON.parse((await kv.get(key)) ?? 'null') as Record<string, unknown>;
      await kv.set(key, JSON.stringify({ ...stored, returnTo: planted }), { ttlMs: 60_000 });
      const callback = await visitCallback(browser, await passIdp(browser, authorizationUrl, 'ada'));
      assert.equal(callback.status, 400, `${planted} → ${callback.location}`);
      assert.equal(callback.location, '');
    }
  });
});

describe('validateReturnTo and withParameter (property)', () => {
  const pieces = fc.constantFrom(
    '/', '/', '/', '.', '..', '%2e', '%2E', '%2e%2e', '\\', '%5c', '%2f', '%2F', '//', 'evil.example', 'app.test', 'localhost',
    '127.0.0.1', '[::1]', ':', ':8443', '@', '?', '#', '&', '\t', '\n', ' ', 'https:', 'http:', 'javascript:', 'x', '%09', '%00', '\u3002', 'ａ',
  );
  const candidates = fc.oneof(
    fc.array(pieces, { maxLength: 12 }).map((parts) => parts.join('')),
    fc.array(pieces, { maxLength: 10 }).map((parts) => `/${parts.join('')}`),
    fc.array(pieces, { maxLength: 10 }).map((parts) => `https://app.test/${parts.join('')}`),
    fc.string({ maxLength: 40 }),
  );

  it('every accepted value is a fixed point and lands on latchkey or a listed host, over https unless loopback', () => {
    fc.assert(fc.property(candidates, (value) => {
      let accepted: string;
      try {
        accepted = validateReturnTo(value, LISTED);
      } catch (error) {
        assert.equal((error as { code?: string }).code, 'invalid_request');
        return;
      }
      assert.equal(validateReturnTo(accepted, LISTED), accepted, 'the stored value validates as itself');
      for (const name of ['lk_code', 'oidc_error']) {
        const location = withParameter(accepted, name, 'AbC-_0');
        // Visible ASCII only: anything else in a Location header is a 500 in Node, or a header split.
        assert.match(location, /^[\x21-\x7e]+$/);
        if (location.startsWith('/')) {
          assert.ok(!location.startsWith('//') && location[1] !== '\\', location);
        }
        // Resolved as a browser resolves a Location header against the callback URL.
        const landed = new URL(location, `${LATCHKEY}/v1/auth/oidc/${PROVIDER}/callback`);
        if (landed.origin === LATCHKEY) continue;
        assert.ok(LISTED.includes(landed.host) || LISTED.includes(landed.hostname), `${value} → ${location}`);
        assert.ok(landed.protocol === 'https:' || ['localhost', '127.0.0.1'].includes(landed.hostname), `${value} → ${location}`);
        assert.equal(landed.username + landed.password, '');
      }
    }), { numRuns: 5000 });
  });
});
