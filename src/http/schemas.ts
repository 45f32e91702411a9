/** JSON schemas shared by routes. Every route validates its input at the edge with these. */
import { createRequire } from 'node:module';
import type { FastifySchemaCompiler } from 'fastify';
import { errorStatus, type ErrorCode } from '../core/errors.ts';
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../core/passwords.ts';

export const flagSchema = { type: 'integer', enum: [0, 1, 2], description: '0 APP, 1 Web, 2 PC' } as const;

/**
 * Free text without control characters: PostgreSQL refuses a NUL in text, so one that reached a
 * query was a 500 instead of a 400; no device name, id or search needs a control character.
 */
export const printableText = (maxLength: number) => ({ type: 'string', maxLength, pattern: '^[^\\p{Cc}]*$' }) as const;
const text = printableText;

export const deviceSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { device_id: text(128), device_name: text(128), device_model: text(128) },
} as const;

/** Letters first, so a username never looks like an email or a `zone-phone`. */
export const usernameSchema = { type: 'string', minLength: 2, maxLength: 32, pattern: '^\\p{L}[\\p{L}\\p{N}_.-]*$' } as const;
export const passwordSchema = { type: 'string', minLength: 1, maxLength: 512 } as const;
const NEW_PASSWORD_DESCRIPTION =
  `${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters, any composition; not one of the most common passwords, nor the username, name, email or service name with only digits or symbols around it`;

/**
 * A password being set. Validation stays as loose as for a presented one, so a too short or too
 * long one is refused by the policy (checkPasswordPolicy) with its own message naming the field,
 * as clients have always been answered; the OpenAPI document states the policy's bounds instead
 * (withNewPasswordBounds).
 */
export const newPasswordSchema = { ...passwordSchema, description: NEW_PASSWORD_DESCRIPTION } as const;

/**
 * A copy of a route schema for the OpenAPI document in which every new password carries the
 * policy's length bounds; the route keeps validating with the original.
 */
export function withNewPasswordBounds<T>(schema: T): T {
  if (Array.isArray(schema)) return schema.map(withNewPasswordBounds) as T;
  if (schema === null || typeof schema !== 'object') return schema;
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) copy[key] = withNewPasswordBounds(value);
  if (copy.description === NEW_PASSWORD_DESCRIPTION) Object.assign(copy, { minLength: PASSWORD_MIN_LENGTH, maxLength: PASSWORD_MAX_LENGTH });
  return copy as T;
}
export const emailSchema = { type: 'string', maxLength: 254, pattern: '^[^\\s@\\p{Cc}]+@[^\\s@\\p{Cc}]+\\.[^\\s@\\p{Cc}]+$' } as const;
export const zoneSchema = { type: 'string', pattern: '^\\d{1,6}$' } as const;
export const phoneSchema = { type: 'string', pattern: '^\\d{4,20}$' } as const;
/** Display names: printable, no control characters. */
export const nameSchema = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[^\\p{Cc}]+$' } as const;
export const sidParamSchema = { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' } as const;

/**
 * An error answer (docs/api.md §3). Routes declare it for each status they can answer, so Fastify
 * serialises errors through it: `details` must stay a free object, or its fields are dropped.
 */
export const errorSchema = {
  type: 'object',
  properties: {
    status: { type: 'integer', description: 'the HTTP status again' },
    code: { type: 'string', description: 'stable; clients switch on it' },
    msg: { type: 'string', description: 'for people; may change' },
    details: { type: 'object', additionalProperties: true, description: 'e.g. `field`: the input at fault' },
  },
  required: ['status', 'code', 'msg'],
} as const;

export type ErrorHttpStatus = (typeof errorStatus)[ErrorCode];

const RETRY_AFTER = { 'retry-after': { type: 'integer', description: 'seconds to wait before trying again' } } as const;

/** The error answers of one status: the codes the error table gives it, and Retry-After where one is sent. */
function errorResponse(status: ErrorHttpStatus) {
  const codes = (Object.keys(errorStatus) as ErrorCode[]).filter((code) => errorStatus[code] === status);
  return {
    ...errorSchema,
    description: codes.map((code) => `\`${code}\``).join(' or '),
    properties: { ...errorSchema.properties, code: { ...errorSchema.properties.code, enum: codes } },
    ...(status === 429 || status === 503 ? { headers: RETRY_AFTER } : {}),
  };
}

/**
 * The `response` entries of the error answers a route can give. Every route that reads a store can
 * answer 503 (`upstream_unavailable`, the store is down) and any route 500 (`internal_error`): both
 * are always added.
 */
export function errorResponses(...statuses: ErrorHttpStatus[]): Record<number, ReturnType<typeof errorResponse>> {
  const all = new Set<ErrorHttpStatus>([...statuses, 500, 503]);
  return Object.fromEntries([...all].sort((a, b) => a - b).map((status) => [status, errorResponse(status)]));
}

/** A route taking a JSON body can also refuse it as unreadable (400), too big (413) or of another type (415). */
export const BODY_ERRORS = [400, 413, 415] as const;

export const okSchema = { type: 'object', properties: { status: { type: 'integer' } } } as const;

export const loginResponseSchema = {
  type: 'object',
  properties: {
    uid: { type: 'string' },
    username: { type: 'string' },
    name: { type: 'string' },
    token: { type: 'string' },
    sid: { type: 'string' },
    device_flag: { type: 'integer' },
    expires_at: { type: 'integer', description: 'Unix time in milliseconds' },
    role: { type: 'string' },
    im_token: { type: 'string' },
  },
  required: ['uid', 'username', 'name', 'token', 'sid', 'device_flag', 'expires_at', 'role'],
} as const;

/** What a password or code login of an account with a second factor answers instead (docs/api.md). */
export const mfaChallengeSchema = {
  type: 'object',
  properties: {
    mfa_required: { type: 'boolean', enum: [true] },
    mfa_ticket: { type: 'string', description: 'for POST /v1/user/mfa/verify; 5 minutes, 5 tries, once' },
    methods: { type: 'array', items: { type: 'string', enum: ['totp', 'recovery'] } },
  },
  required: ['mfa_required', 'mfa_ticket', 'methods'],
} as const;

/** The answer of a first-factor login: a session, or the challenge of its second step. */
export const loginOrChallengeSchema = { anyOf: [loginResponseSchema, mfaChallengeSchema] } as const;

/** What a session says of itself (never its token). */
export const sessionFields = {
  sid: { type: 'string' },
  device_flag: { type: 'integer' },
  device_id: { type: 'string' },
  device_name: { type: 'string' },
  device_model: { type: 'string' },
  method: { type: 'string' },
  amr: { type: 'array', items: { type: 'string' }, description: 'how the login was authenticated beyond `method`: `pwd`/`code` + `otp`/`recovery` for a second step; the IdP\'s `amr` for SSO' },
  passkey_id: { type: 'string', description: 'a `passkey` login: the passkey it signed with (its id in GET /v1/user/passkeys); removing it ends the session' },
  created_at: { type: 'integer' },
  expires_at: { type: 'integer' },
} as const;

/** A session in a list: where it logged in from, when it was last used, whether it is the caller's. */
export const sessionSchema = {
  type: 'object',
  properties: { ...sessionFields, ip: { type: 'string' }, last_seen_at: { type: 'integer' }, current: { type: 'boolean' } },
} as const;

/**
 * The validator of routes whose query strings hold numbers: a query value is always text, so these
 * are coerced to the schema's type, ranged by its minimum and maximum and defaulted by its default.
 * Everywhere else types are not coerced (a JSON body says `1`, not `"1"`).
 */
const { Ajv } = createRequire(import.meta.url)('ajv') as typeof import('ajv');
const queryAjv = new Ajv({ coerceTypes: true, useDefaults: true, allErrors: false, removeAdditional: false, strict: false });
export const numericQueryValidator: FastifySchemaCompiler<object> = ({ schema }) => queryAjv.compile(schema);

/** A whole number in a query string (routes with `numericQueryValidator`). */
export const wholeNumber = (minimum: number, maximum: number, description: string, fallback?: number) =>
  ({ type: 'integer', minimum, maximum, description, ...(fallback === undefined ? {} : { default: fallback }) }) as const;
