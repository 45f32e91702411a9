import type { Kv } from '../../ports/kv.ts';
import type { Clock } from '../../ports/clock.ts';
import type { Random } from '../../ports/random.ts';
import type { Config } from '../../config/config.ts';
import type { PasswordFlowDeps } from '../password/password-flow.ts';

/** What the QR flow needs from the runtime (a Runtime satisfies it). */
export interface QrFlowDeps extends Pick<PasswordFlowDeps, 'sessions' | 'accounts' | 'events' | 'audit' | 'metrics' | 'secondStep'> {
  readonly kv: Kv;
  readonly clock: Clock;
  readonly random: Random;
  readonly config: Pick<Config, 'qr'>;
}
