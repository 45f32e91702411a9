import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LatchkeyError, errorStatus, type ErrorCode } from '../core/errors.ts';
import { StoreUnavailableError } from '../ports/errors.ts';

export interface ErrorBody {
  status: number;
  code: ErrorCode;
  msg: string;
  details?: Record<string, unknown>;
}

export function send(reply: FastifyReply, body: ErrorBody, retryAfter?: number): FastifyReply {
  if (retryAfter !== undefined) void reply.header('retry-after', String(retryAfter));
  return reply.code(body.status).type('application/json; charset=utf-8').send(body);
}

/** Fastify's own 4xx (parser, limits, validation) in the error model. */
function fromFastify(error: FastifyError): ErrorBody | null {
  if (error.validation !== undefined) {
    const first = error.validation[0];
    const missing = first?.params?.missingProperty;
    const path = `${error.validationContext ?? 'body'}${first?.instancePath?.replaceAll('/', '.') ?? ''}`;
    const field = typeof missing === 'string' ? `${path}.${missing}` : path;
    return { status: 400, code: 'invalid_request', msg: `${field} ${first?.message ?? 'is invalid'}`, details: { field } };
  }
  const status = error.statusCode ?? 500;
  if (status < 400 || status >= 500) return null;
  const code: ErrorCode =
    status === 413 ? 'payload_too_large' : status === 415 ? 'unsupported_media_type' : status === 404 ? 'not_found' : 'invalid_request';
  return { status: errorStatus[code], code, msg: error.message, details: { field: 'body' } };
}

/** The error model's answer to a thrown error (docs/api.md §3), and its Retry-After; logs what needs it. */
export function errorAnswer(error: FastifyError, request: FastifyRequest): { body: ErrorBody; retryAfter?: number } {
  if (error instanceof LatchkeyError) {
    const body: ErrorBody = { status: error.status, code: error.code, msg: error.message };
    if (error.details !== undefined) body.details = error.details;
    return error.retryAfter === undefined ? { body } : { body, retryAfter: error.retryAfter };
  }
  if (error instanceof StoreUnavailableError) {
    request.log.warn({ err: error }, 'store unavailable');
    return { body: { status: 503, code: 'upstream_unavailable', msg: 'a backing store is unavailable; try again shortly' }, retryAfter: 1 };
  }
  const mapped = fromFastify(error);
  if (mapped !== null) return { body: mapped };
  request.log.error({ err: error }, 'unhandled error');
  return { body: { status: 500, code: 'internal_error', msg: 'internal error' } };
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const { body, retryAfter } = errorAnswer(error, request);
    return send(reply, body, retryAfter);
  });
  app.setNotFoundHandler((request, reply) =>
    send(reply, { status: 404, code: 'not_found', msg: `no route ${request.method} ${(request.url.split('?')[0] ?? '').slice(0, 200)}` }),
  );
}

/** Requests Fastify cannot even route (an undecodable URL, a bad header): 400 in the error model. */
export function rejectMalformedRequest(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  send(reply, { status: 400, code: 'invalid_request', msg: error.message, details: { field: 'url' } });
}
