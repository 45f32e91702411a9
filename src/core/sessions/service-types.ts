/** What the session core (service.ts) is given and what it answers. */
import type { Kv } from '../../ports/kv.ts';
import type { Clock } from '../../ports/clock.ts';
import type { Random } from '../../ports/random.ts';
import type { AccountStatus } from '../../ports/accounts.ts';
import type { ImBridge } from '../../ports/im-bridge.ts';
import type { DeviceFlag, DevicePolicies, SessionLimit } from './policy.ts';
import type { ImOutcome } from './im-tokens.ts';
import type { ImQuitRetryOptions } from './im-quit-queue.ts';
import type { DeviceInfo, LoginMethod, RevokeReason, Session } from './record.ts';

/** Reads the account's current status; null when the account does not exist. */
export type AccountStatusReader = (uid: string) => Promise<AccountStatus | null>;

/** Told about every session that ended, once per session, by the call that ended it. */
export type SessionEndedListener = (session: Session, reason: RevokeReason) => void | Promise<void>;

export interface SessionServiceOptions {
  readonly kv: Kv;
  readonly clock: Clock;
  readonly random: Random;
  readonly policies: DevicePolicies;
  /** Limits on the live sessions of groups of flags (`session_limits`, docs/design.md §3.2, 7); none if absent. */
  readonly limits?: readonly SessionLimit[];
  readonly ttlMs: number;
  readonly accountStatus: AccountStatusReader;
  /** last_seen_at is written at most this often per session (per node). */
  readonly touchIntervalMs?: number;
  /** A session unused this long ends (ASVS 7.3.1); 0 or absent: no inactivity timeout. */
  readonly idleTimeoutMs?: number;
  /** How long a token whose session ended can still learn why (tombstone.ts); 0 or absent: never. */
  readonly endedRetentionMs?: number;
  readonly onEnded?: SessionEndedListener;
  /** The IM server whose per-(uid, flag) token the sessions share (docs/design.md §3.4); none without it. */
  readonly im?: {
    readonly bridge: ImBridge;
    readonly quitRetry: ImQuitRetryOptions;
    /**
     * Flags whose session token is itself the IM token (compat.octo: the TangSengDaoDao web client
     * ignores `im_token`; docs/octo-compat.md §2, 8). Their policy must be exclusive.
     */
    readonly sessionTokenFlags?: readonly DeviceFlag[];
  };
}

export interface IssueInput {
  readonly uid: string;
  readonly flag: DeviceFlag;
  readonly device: DeviceInfo;
  readonly method: LoginMethod;
  readonly ip: string;
  readonly userAgent: string;
  /** Authentication methods beyond `method` (a second step, an IdP's `amr`), stored in the record. */
  readonly amr?: readonly string[];
  /** The passkey a `passkey` login signed with (its credential id), stored in the record. */
  readonly passkeyId?: string;
}

export interface IssuedSession {
  readonly token: string;
  readonly session: Session;
  /** The IM token this session shares with its flag's other sessions; only with an IM bridge. */
  readonly imToken?: string;
}

export interface LogoutOutcome {
  /** False when the session had already ended. */
  readonly ended: boolean;
  /** Whether the IM server was told; null without an IM bridge or when nothing ended. */
  readonly im: ImOutcome | null;
}
