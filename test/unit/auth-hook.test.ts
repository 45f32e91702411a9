import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { MemoryKv } from '../../src/adapters/memory/memory-kv.ts';
import { defaultDevicePolicies } from '../../src/core/sessions/policy.ts';
import { SessionService } from '../../src/core/sessions/service.ts';
import { authenticate, sessionOf } from '../../src/http/auth.ts';
import { createMetrics } from '../../src/ops/metrics.ts';
import { systemClock } from '../../src/ports/clock.ts';
import { cryptoRandom } from '../../src/ports/random.ts';

describe('authenticate hook', () => {
  it('counts every validation in the histogram under its result', async () => {
    const kv = new MemoryKv();
    const sessions = new SessionService({
      kv, clock: systemClock, random: cryptoRandom, policies: defaultDevicePolicies, ttlMs: 60_000, accountStatus: async () => 'active',
    });
    const metrics = createMetrics();
    const app = Fastify();
    app.decorateRequest('session', null);
    app.get('/who', { onRequest: authenticate(sessions, metrics) }, async (request) => ({ uid: sessionOf(request).uid }));
    const { token } = await sessions.issue({
      uid: 'u1', flag: 1, device: { device_id: 'd', device_name: 'n', device_model: 'm' }, method: 'password', ip: '127.0.0.1', userAgent: 'ua',
    });
    try {
      const valid = await app.inject({ url: '/who', headers: { token } });
      assert.equal(valid.statusCode, 200);
      assert.deepEqual(valid.json(), { uid: 'u1' });
      for (const wrong of [token.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')), 'garbage']) {
        assert.equal((await app.inject({ url: '/who', headers: { token: wrong } })).statusCode, 401);
      }
      const text = await metrics.registry.getSingleMetricAsString('latchkey_validation_seconds');
      assert.match(text, /latchkey_validation_seconds_count\{result="valid"\} 1$/m);
      assert.match(text, /latchkey_validation_seconds_count\{result="invalid"\} 2$/m);
    } finally {
      await app.close();
      await kv.close();
    }
  });
});
