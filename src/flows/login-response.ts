import type { User } from '../ports/accounts.ts';
import type { IssuedSession } from '../core/sessions/service.ts';

/** What every login method answers (docs/api.md §4). */
export interface LoginResponse {
  readonly uid: string;
  readonly username: string;
  readonly name: string;
  readonly token: string;
  readonly sid: string;
  readonly device_flag: number;
  readonly expires_at: number;
  readonly role: string;
  readonly im_token?: string;
}

export function loginResponse(user: User, issued: IssuedSession): LoginResponse {
  return {
    uid: user.uid,
    username: user.username,
    name: user.name,
    token: issued.token,
    sid: issued.session.sid,
    device_flag: issued.session.device_flag,
    expires_at: issued.session.expires_at,
    role: user.role,
    ...(issued.imToken === undefined ? {} : { im_token: issued.imToken }),
  };
}
