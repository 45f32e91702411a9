/** JSON schemas shared by routes. Every route validates its input at the edge with these. */

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
/**
 * A password being set. The schema stays as loose as a presented one (the policy answers with its
 * own message, naming the field); the description tells the OpenAPI reader what the policy enforces.
 */
export const newPasswordSchema = {
  ...passwordSchema,
  description: '8 to 128 characters, any composition; not one of the most common passwords, nor the username, name, email or service name with only digits or symbols around it',
} as const;
export const emailSchema = { type: 'string', maxLength: 254, pattern: '^[^\\s@\\p{Cc}]+@[^\\s@\\p{Cc}]+\\.[^\\s@\\p{Cc}]+$' } as const;
export const zoneSchema = { type: 'string', pattern: '^\\d{1,6}$' } as const;
export const phoneSchema = { type: 'string', pattern: '^\\d{4,20}$' } as const;
/** Display names: printable, no control characters. */
export const nameSchema = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[^\\p{Cc}]+$' } as const;
export const sidParamSchema = { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' } as const;

export const errorSchema = {
  type: 'object',
  properties: {
    status: { type: 'integer' },
    code: { type: 'string' },
    msg: { type: 'string' },
    details: { type: 'object', additionalProperties: true },
  },
  required: ['status', 'code', 'msg'],
} as const;

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

export const sessionSchema = {
  type: 'object',
  properties: {
    sid: { type: 'string' },
    device_flag: { type: 'integer' },
    device_id: { type: 'string' },
    device_name: { type: 'string' },
    device_model: { type: 'string' },
    method: { type: 'string' },
    ip: { type: 'string' },
    created_at: { type: 'integer' },
    expires_at: { type: 'integer' },
    last_seen_at: { type: 'integer' },
    current: { type: 'boolean' },
  },
} as const;
