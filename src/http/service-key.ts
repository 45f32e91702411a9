import type { FastifyRequest } from 'fastify';
import { forbidden } from '../core/errors.ts';
import { sameSecret } from '../core/constant-time.ts';

export const SERVICE_KEY_HEADER = 'x-latchkey-service-key';

/**
 * Checks `x-latchkey-service-key` against the configured keys. Both sides are hashed first, so the
 * comparison runs over equal lengths in constant time, and every key is compared (no early exit):
 * the time taken says nothing about which key, or how much of one, was right.
 */
export function serviceKeyCheck(keys: readonly string[]) {
  return async function requireServiceKey(request: FastifyRequest): Promise<void> {
    const presented = request.headers[SERVICE_KEY_HEADER];
    const candidate = typeof presented === 'string' ? presented : '';
    let matched = false;
    for (const known of keys) matched = sameSecret(candidate, known) || matched;
    if (!matched || typeof presented !== 'string') throw forbidden(`a valid ${SERVICE_KEY_HEADER} header is required`);
  };
}
