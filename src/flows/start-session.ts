/**
 * The one way every flow (password, register, one-time code, QR, SSO) turns an authenticated user
 * into a session and a login response.
 */
import type { AccountRepo, User } from '../ports/accounts.ts';
import type { Clock } from '../ports/clock.ts';
import type { DomainEvent, EventSink } from '../ports/events.ts';
import type { IssuedSession, SessionService } from '../core/sessions/service.ts';
import type { DeviceFlag } from '../core/sessions/policy.ts';
import type { OctoMirror } from '../core/sessions/octo-mirror.ts';
import type { DeviceInfo, LoginMethod } from '../core/sessions/record.ts';
import { LatchkeyError } from '../core/errors.ts';
import type { AuditContext, AuditTrail } from '../ops/audit.ts';
import type { Metrics } from '../ops/metrics.ts';
import { loginResponse, type LoginResponse } from './login-response.ts';
import type { NewDeviceAlerts } from './alerts/new-device.ts';

export interface LoginContext extends AuditContext {
  readonly flag: DeviceFlag;
  readonly device: DeviceInfo;
}

export interface StartSessionDeps {
  readonly sessions: SessionService;
  readonly accounts: AccountRepo;
  readonly audit: AuditTrail;
  readonly metrics: Metrics;
  readonly clock: Clock;
  /** Told of a device new to the account (it mails, or not, without holding the login). */
  readonly alerts?: Pick<NewDeviceAlerts, 'newDevice'>;
  /** octo-server's Redis, kept in step with the sessions (compat.octo_redis); null or absent: none. */
  readonly octoMirror?: OctoMirror | null;
  /** session.created goes to the webhook outbox (docs/design.md §3.6). */
  readonly events?: EventSink;
}

/**
 * `amr`: how the login was authenticated beyond its method; `passkeyId`: the passkey a `passkey`
 * login signed with. Both are kept in the session's record.
 */
export async function startSession(
  deps: StartSessionDeps, user: User, method: LoginMethod, context: LoginContext, amr?: readonly string[], passkeyId?: string,
): Promise<LoginResponse> {
  let issued: IssuedSession;
  try {
    issued = await deps.sessions.issue({
      uid: user.uid, flag: context.flag, device: context.device, method, ip: context.ip, userAgent: context.userAgent,
      ...(amr === undefined ? {} : { amr }), ...(passkeyId === undefined ? {} : { passkeyId }),
    });
  } catch (error) {
    // Refused after the credentials were right: banned meanwhile, a reject_new session limit is full
    // (409 session_limit, docs/api.md §3), or the IM server refused or was down.
    if (error instanceof LatchkeyError) {
      const disabled = error.code === 'account_disabled';
      const limited = error.code === 'session_limit';
      deps.metrics.logins.inc({ method, result: disabled ? 'disabled' : limited ? 'session_limit' : 'unavailable' });
      // `account_disabled` as every flow records it; anything else names the method and the error code.
      const reason = disabled ? error.code : `${method}:${error.code}`;
      await deps.audit.record({ type: 'login', uid: user.uid, sid: null, result: 'fail', reason, context });
    }
    throw error;
  }
  try {
    // Before the token is handed out, so octo-server accepts it from the first request. If its
    // Redis does not answer, the session ends again (its ending queues the removal of whatever
    // landed) and the login answers 503 (docs/octo-compat.md §3).
    await deps.octoMirror?.started(issued.token, issued.session, user);
    await recordLogin(deps, user, method, context, issued);
  } catch (error) {
    // The account store failed after the session was written (PostgreSQL down): nobody will ever
    // hold this token, so end the session rather than leave it listed among the user's devices.
    // If the session store is down too, the session stays until it expires, unusable by anyone.
    await deps.sessions.abandon(issued.session).catch(() => undefined);
    throw error;
  }
  return loginResponse(user, issued);
}

async function recordLogin(deps: StartSessionDeps, user: User, method: LoginMethod, context: LoginContext, issued: IssuedSession): Promise<void> {
  // session.created is written before the login answers, with the device row (one transaction) when
  // there is one, and a failure fails the login (the session is abandoned): a session nobody was told
  // of never reaches its holder (docs/design.md §3.6).
  const { session } = issued;
  const created = (newDevice: boolean): DomainEvent[] => [{
    type: 'session.created',
    data: {
      uid: user.uid, sid: session.sid, device_flag: session.device_flag, device_id: session.device_id, device_name: session.device_name,
      device_model: session.device_model, method, ip: session.ip, new_device: newDevice,
    },
  }];
  const reported = deps.events?.enabled === true;
  if (context.device.device_id !== '') {
    const isNew = await deps.accounts.upsertDevice({
      uid: user.uid,
      deviceId: context.device.device_id,
      name: context.device.device_name,
      model: context.device.device_model,
      lastLoginAt: deps.clock.now(),
    }, reported ? created : undefined);
    if (isNew) deps.alerts?.newDevice(user, context);
  } else if (reported) {
    await deps.events?.emit(created(false));
  }
  deps.metrics.logins.inc({ method, result: 'ok' });
  await deps.audit.record({ type: 'login', uid: user.uid, sid: issued.session.sid, result: 'ok', reason: method, context });
}
