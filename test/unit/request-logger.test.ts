import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { FastifyBaseLogger } from 'fastify';
import { lazyRequestLogger } from '../../src/http/request-logger.ts';

function capture(): { logger: FastifyBaseLogger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = pino({ level: 'info', redact: { paths: ['*.token'], censor: '[redacted]' } }, stream);
  const lines = () => chunks.join('').split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
  return { logger, lines };
}

describe('request logger', () => {
  it('makes no child logger for a request that never logs', () => {
    const { logger } = capture();
    let children = 0;
    const counting = Object.create(logger, {
      child: { value: (...args: Parameters<FastifyBaseLogger['child']>) => { children += 1; return logger.child(...args); } },
    }) as FastifyBaseLogger;
    const requestLogger = lazyRequestLogger(counting, { reqId: 'req-1' }, {});
    assert.equal(children, 0);
    requestLogger.info('first line');
    requestLogger.warn('second line');
    assert.equal(children, 1);
  });

  it('logs every line with the request id, the parent level and redaction', () => {
    const { logger, lines } = capture();
    const requestLogger = lazyRequestLogger(logger, { reqId: 'req-7' }, {});
    requestLogger.debug('below the level');
    requestLogger.error({ err: new Error('boom'), body: { token: 'secret-token' } }, 'unhandled error');
    assert.equal(requestLogger.level, 'info');
    const [line, ...rest] = lines();
    assert.equal(rest.length, 0);
    assert.equal(line?.reqId, 'req-7');
    assert.equal(line?.msg, 'unhandled error');
    assert.deepEqual(line?.body, { token: '[redacted]' });
  });

  it('applies the options fastify passes for a route, such as its log level', () => {
    const { logger, lines } = capture();
    const requestLogger = lazyRequestLogger(logger, { reqId: 'req-9' }, { level: 'debug' });
    requestLogger.debug('now above the level');
    assert.equal(lines()[0]?.msg, 'now above the level');
  });
});
