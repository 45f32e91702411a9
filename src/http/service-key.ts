import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { forbidden } from '../core/errors.ts';

export const SERVICE_KEY_HEADER = 'x-latchkey-service-key';

/**
 * Checks `x-latchkey-service-key` against the configured keys. Both sides are hashed first, so the
 * comparison runs over equal lengths in constant time, and every key is compared (no early exit):
 * the time taken says nothing about which key, or how much of one, was right.
 */
export function serviceKeyCheck(keys: readonly string[]) {
  const digests = keys.map(digest);
  return async function requireServiceKey(request: FastifyRequest): Promise<void> {
    const presented = request.headers[SERVICE_KEY_HEADER];
    const candidate = digest(typeof presented === 'string' ? presented : '');
    let matched = false;
    for (const known of digests) matched = timingSafeEqual(known, candidate) || matched;
    if (!matched || typeof presented !== 'string') throw forbidden(`a valid ${SERVICE_KEY_HEADER} header is required`);
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
