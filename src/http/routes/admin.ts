import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Runtime } from '../../runtime/runtime.ts';
import type { AccountStatus, StoredAuditEvent, User } from '../../ports/accounts.ts';
import { revokeAllSessions, resetSecondFactors, setUserStatus } from '../../flows/account-actions.ts';
import { LatchkeyError, forbidden, invalidRequest, notFound } from '../../core/errors.ts';
import { secondFactorStatus } from '../../flows/mfa/second-factors.ts';
import { provedSecondFactor } from '../../flows/mfa/step-up.ts';
import { stepUpCheck } from '../step-up.ts';
import { authenticate, sessionOf } from '../auth.ts';
import { auditContext } from '../context.ts';
import { BODY_ERRORS, errorResponses, numericQueryValidator, printableText, sessionSchema, wholeNumber } from '../schemas.ts';

/** latchkey uids are hex; imported octo-server uids are short words. */
const uidSchema = { type: 'string', pattern: '^[A-Za-z0-9_.:@-]{1,128}$' } as const;
const uidParams = { type: 'object', required: ['uid'], properties: { uid: uidSchema } } as const;

const userSchema = {
  type: 'object',
  properties: {
    uid: { type: 'string' },
    username: { type: 'string' },
    name: { type: 'string' },
    email: { type: 'string', nullable: true },
    zone: { type: 'string', nullable: true },
    phone: { type: 'string', nullable: true },
    email_verified: { type: 'boolean' },
    phone_verified: { type: 'boolean' },
    role: { type: 'string', enum: ['user', 'admin'] },
    status: { type: 'string', enum: ['active', 'banned'] },
    created_at: { type: 'integer' },
    updated_at: { type: 'integer' },
  },
} as const;

const auditEventSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    type: { type: 'string' },
    uid: { type: 'string', nullable: true },
    sid: { type: 'string', nullable: true },
    result: { type: 'string', enum: ['ok', 'fail'] },
    reason: { type: 'string', nullable: true, description: 'how or why (docs/api.md §9); an operator\'s rows name them: `admin:<uid>; all:<n>`, `cli; <n> session(s) revoked`' },
    ip: { type: 'string', nullable: true },
    user_agent: { type: 'string', nullable: true },
    at: { type: 'integer', description: 'Unix time in milliseconds' },
  },
} as const;

/** With an IM server: "owed" while the device_quit waits for it (retried until it lands). */
const imOutcomeSchema = { type: 'string', enum: ['ok', 'owed'], description: 'with an IM server: "owed" while its device_quit waits for the IM server (retried until it lands)' } as const;

interface UsersQuery { query?: string; page: number; page_size: number }
interface AuditQueryString { uid?: string; type?: string; since?: number; before?: number; limit: number }

const MAX_PAGE_SIZE = 100;
const MAX_AUDIT_LIMIT = 200;

/**
 * Administration (docs/api.md §9): users, bans, a user's sessions, the audit trail. The admin role is read
 * from the account store on EVERY call, never from the session or a cache, so a demotion or a ban
 * of the admin takes effect on their next request (octo-server embedded the role in the token, so
 * a removed admin stayed one until they logged out, docs/octo-server.md §8.7).
 */
export function adminRoutes(app: FastifyInstance, runtime: Runtime): void {
  const requireSession = authenticate(runtime.sessions, runtime.metrics);
  const { accounts, sessions } = runtime;
  const stepUp = stepUpCheck(runtime);

  /** A TOTP factor or a passkey (mfa.require_for_admins). */
  async function hasSecondFactor(uid: string): Promise<boolean> {
    const [factors, passkeys] = await Promise.all([secondFactorStatus(runtime.secondFactors, uid), runtime.passkeys.repo.count(uid)]);
    return factors.totp || passkeys > 0;
  }

  async function requireAdmin(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    await requireSession(request, reply);
    const admin = await accounts.findByUid(sessionOf(request).uid);
    if (admin === null || admin.role !== 'admin' || admin.status !== 'active') throw forbidden('only administrators can do this');
    if (runtime.config.mfa.requireForAdmins && !provedSecondFactor(sessionOf(request))) {
      // No factor yet: enrol one (the only thing this admin can do). One, but this session did
      // not show it (a password login of an account with only passkeys): sign in with it.
      if (!(await hasSecondFactor(admin.uid))) {
        throw new LatchkeyError('forbidden', 'administrators must enrol a second factor first (mfa.require_for_admins)', { enrol_second_factor: true });
      }
      throw new LatchkeyError('forbidden', 'sign in with your second factor to administer (mfa.require_for_admins)', { second_factor_required: true });
    }
  }

  app.get<{ Querystring: UsersQuery }>('/v1/manager/users', {
    onRequest: requireAdmin,
    validatorCompiler: numericQueryValidator,
    schema: {
      tags: ['administration'],
      summary: 'Users, searched by username, name, email or phone, a page at a time',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          query: printableText(100),
          page: wholeNumber(1, 1_000_000, '1-based', 1),
          page_size: wholeNumber(1, MAX_PAGE_SIZE, 'users per page', 20),
        },
      },
      response: {
        200: {
          type: 'object',
          properties: { users: { type: 'array', items: userSchema }, total: { type: 'integer' }, page: { type: 'integer' }, page_size: { type: 'integer' } },
        },
        ...errorResponses(400, 401, 403),
      },
    },
  }, async (request) => {
    const { page, page_size: pageSize } = request.query;
    const query = request.query.query?.trim();
    const { users, total } = await accounts.listUsers({
      ...(query ? { query } : {}), offset: (page - 1) * pageSize, limit: pageSize,
    });
    return { users: users.map(userView), total, page, page_size: pageSize };
  });

  app.put<{ Params: { uid: string }; Body: { status: AccountStatus } }>('/v1/manager/users/:uid/status', {
    onRequest: requireAdmin,
    schema: {
      tags: ['administration'],
      summary: 'Ban (ends every session, quits every IM device) or unban',
      params: uidParams,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['status'],
        properties: { status: { type: 'string', enum: ['active', 'banned'] } },
      },
      response: {
        200: {
          type: 'object',
          properties: {
            status: { type: 'integer' },
            revoked: { type: 'integer' },
            im: imOutcomeSchema,
          },
        },
        ...errorResponses(...BODY_ERRORS, 401, 403, 404, 409),
      },
    },
  }, async (request) => {
    const admin = sessionOf(request);
    const { uid } = request.params;
    const { status } = request.body;
    // An administrator who bans themselves is signed out with nobody left to undo it.
    if (uid === admin.uid && status === 'banned') throw invalidRequest('uid', 'you cannot ban your own account');
    await stepUp.require(admin);
    const revoked = await setUserStatus(runtime, uid, status, { operator: { admin: admin.uid }, context: auditContext(request) });
    return { status: 200, revoked, ...(status === 'banned' ? await imAfterQuitAll(uid) : {}) };
  });

  /** Whether a quit of every IM device reached the IM server, or is still owed to it (it was down). */
  async function imAfterQuitAll(uid: string): Promise<{ im?: 'ok' | 'owed' }> {
    const owed = await sessions.im.owesQuit(uid);
    return owed === null ? {} : { im: owed ? 'owed' : 'ok' };
  }

  app.get<{ Params: { uid: string } }>('/v1/manager/users/:uid/sessions', {
    onRequest: requireAdmin,
    schema: {
      tags: ['administration'],
      summary: 'A user\'s live sessions (never a token)',
      params: uidParams,
      response: { 200: { type: 'object', properties: { sessions: { type: 'array', items: sessionSchema } } }, ...errorResponses(400, 401, 403, 404) },
    },
  }, async (request) => {
    const { uid } = request.params;
    if ((await accounts.findByUid(uid)) === null) throw notFound('user');
    return { sessions: await sessions.list(uid) };
  });

  app.delete<{ Params: { uid: string } }>('/v1/manager/users/:uid/sessions', {
    onRequest: requireAdmin,
    schema: {
      tags: ['administration'],
      summary: 'End every session of a user and quit their IM devices',
      params: uidParams,
      response: { 200: { type: 'object', properties: { revoked: { type: 'integer' }, im: imOutcomeSchema } }, ...errorResponses(...BODY_ERRORS, 401, 403, 404) },
    },
  }, async (request) => {
    const admin = sessionOf(request);
    const { uid } = request.params;
    if ((await accounts.findByUid(uid)) === null) throw notFound('user');
    await stepUp.require(admin);
    const revoked = await revokeAllSessions(runtime, uid, { operator: { admin: admin.uid }, context: auditContext(request) });
    return { revoked, ...(await imAfterQuitAll(uid)) };
  });

  app.delete<{ Params: { uid: string } }>('/v1/manager/users/:uid/mfa', {
    onRequest: requireAdmin,
    schema: {
      tags: ['administration'],
      summary: 'Remove every second factor of a user (lost phone and codes) and end their sessions',
      params: uidParams,
      response: { 200: { type: 'object', properties: { revoked: { type: 'integer' }, im: imOutcomeSchema } }, ...errorResponses(...BODY_ERRORS, 401, 403, 404) },
    },
  }, async (request) => {
    const admin = sessionOf(request);
    const { uid } = request.params;
    if ((await accounts.findByUid(uid)) === null) throw notFound('user');
    await stepUp.require(admin);
    const revoked = await resetSecondFactors({ ...runtime, factors: runtime.secondFactors.factors, passkeys: runtime.passkeys.repo }, uid, { operator: { admin: admin.uid }, context: auditContext(request) });
    runtime.metrics.mfa.inc({ event: 'reset', method: 'all', result: 'ok' });
    return { revoked, ...(await imAfterQuitAll(uid)) };
  });

  app.get<{ Querystring: AuditQueryString }>('/v1/manager/audit', {
    onRequest: requireAdmin,
    validatorCompiler: numericQueryValidator,
    schema: {
      tags: ['administration'],
      summary: 'Audit events, newest first; page on with `before` = the last id seen',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          uid: uidSchema,
          type: { type: 'string', pattern: '^[a-z][a-z0-9_]{0,63}$' },
          since: wholeNumber(0, Number.MAX_SAFE_INTEGER, 'Unix time in milliseconds'),
          before: wholeNumber(0, Number.MAX_SAFE_INTEGER, 'only events with a smaller id'),
          limit: wholeNumber(1, MAX_AUDIT_LIMIT, 'events per page', 50),
        },
      },
      response: {
        200: {
          type: 'object',
          properties: {
            events: { type: 'array', items: auditEventSchema },
            next_before: { type: 'integer', nullable: true, description: 'pass as `before` for the next page; null on the last' },
          },
        },
        ...errorResponses(400, 401, 403),
      },
    },
  }, async (request) => {
    const { uid, type, since, before, limit } = request.query;
    const events = await accounts.queryAudit({
      ...(uid === undefined ? {} : { uid }),
      ...(type === undefined ? {} : { type }),
      ...(since === undefined ? {} : { since }),
      ...(before === undefined ? {} : { beforeId: before }),
      limit,
    });
    const last = events.at(-1);
    return { events: events.map(auditView), next_before: events.length === limit && last !== undefined ? last.id : null };
  });
}

function userView(user: User) {
  return {
    uid: user.uid,
    username: user.username,
    name: user.name,
    email: user.email,
    zone: user.zone,
    phone: user.phone,
    email_verified: user.emailVerified,
    phone_verified: user.phoneVerified,
    role: user.role,
    status: user.status,
    created_at: user.createdAt,
    updated_at: user.updatedAt,
  };
}

function auditView(event: StoredAuditEvent) {
  return {
    id: event.id,
    type: event.type,
    uid: event.uid,
    sid: event.sid,
    result: event.result,
    reason: event.reason,
    ip: event.ip,
    user_agent: event.userAgent,
    at: event.at,
  };
}
