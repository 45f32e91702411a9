/**
 * Hole 5 (second half): the hashing queue was unbounded, so a burst of password checks made every
 * other login wait behind it. Past `password.max_queue` a check is refused at once with 503.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../support/server.ts';

interface Timed {
  readonly status: number;
  readonly code: string;
  readonly retryAfter: string | null;
  readonly ms: number;
}

async function timedLogin(server: TestServer, username: string, password: string): Promise<Timed> {
  const started = performance.now();
  const response = await fetch(`${server.url}/v1/user/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password, flag: 1 }),
  });
  const body = (await response.json()) as { code?: string };
  return { status: response.status, code: body.code ?? '', retryAfter: response.headers.get('retry-after'), ms: performance.now() - started };
}

const servers: TestServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

describe('the password hashing queue is bounded', () => {
  it('a burst past max_queue is answered 503 upstream_unavailable with Retry-After at once, not queued', async () => {
    // One thread and slow hashes (~0.2 s each), so 30 logins at once would queue for seconds.
    const s = await startTestServer({ password: { concurrency: 1, max_queue: 2, memory_cost: 32_768, time_cost: 3 } });
    servers.push(s);
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => timedLogin(s, `nobody${i}`, 'a wrong guess')));
    const checked = answers.filter((a) => a.status === 401);
    const refused = answers.filter((a) => a.status === 503);
    assert.equal(checked.length + refused.length, 30, JSON.stringify(answers.map((a) => a.status)));
    assert.ok(refused.length >= 15, `refused ${refused.length}, checked ${checked.length}`);
    const slowestChecked = Math.max(...checked.map((a) => a.ms));
    for (const answer of refused) {
      assert.equal(answer.code, 'upstream_unavailable');
      assert.ok(Number(answer.retryAfter) >= 1, `Retry-After ${answer.retryAfter}`);
      assert.ok(answer.ms < slowestChecked, `a refusal took ${answer.ms.toFixed(0)} ms, the slowest check ${slowestChecked.toFixed(0)} ms`);
    }
  });

  it('the refused attempts spend no login budget: the owner gets in right after the burst', async () => {
    const s = await startTestServer({
      password: { concurrency: 1, max_queue: 1, memory_cost: 32_768, time_cost: 3 },
      login_throttle: { per_account_ip: 4, per_account: 100_000 },
    });
    servers.push(s);
    const registered = await fetch(`${s.url}/v1/user/register`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'gina', password: 'correct horse' }),
    });
    assert.equal(registered.status, 201);
    // A few wrong guesses get checked (one running, one waiting, one more once the first is done on
    // a loaded machine); the rest are refused unchecked. Had the refusals been counted, the address
    // would be past its budget of 4 and the owner's login below a 429.
    const burst = await Promise.all(Array.from({ length: 12 }, () => timedLogin(s, 'gina', 'a wrong guess')));
    assert.ok(burst.filter((a) => a.status === 401).length <= 3, JSON.stringify(burst.map((a) => a.status)));
    assert.ok(burst.filter((a) => a.status === 503).length >= 6, JSON.stringify(burst.map((a) => a.status)));
    assert.equal((await timedLogin(s, 'gina', 'correct horse')).status, 200, 'refusals did not lock the address');
  });
});
