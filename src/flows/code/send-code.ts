import type { CodePurpose } from '../../ports/sender.ts';
import { SenderError } from '../../ports/sender.ts';
import { LatchkeyError, invalidRequest } from '../../core/errors.ts';
import { destinationId, maskDestination, type Destination } from '../../core/destinations.ts';
import type { AuditContext } from '../../ops/audit.ts';
import type { IssuedCode } from './code-store.ts';
import { RESEND_COOLDOWN_SECONDS } from './resend-cooldown.ts';
import { findByDestination, registrationOpen, type CodeFlowDeps } from './deps.ts';

export interface SendCodeAnswer {
  readonly status: 200;
  readonly resend_after: number;
}

/**
 * POST /v1/user/code/send. The answer, the store writes, the cooldown and the limits are the same
 * whether or not an account exists, and so is (about) the time taken: octo-server's code routes told
 * anyone which numbers and emails had accounts (research spec §7 item 9). A login or reset code
 * for an address without an account is made and stored like any other, just never delivered.
 */
export async function sendCode(
  deps: CodeFlowDeps,
  purpose: CodePurpose,
  destination: Destination,
  context: AuditContext,
): Promise<SendCodeAnswer> {
  const { channel } = destination;
  if (!deps.sender.channels.includes(channel)) throw invalidRequest('channel', `this server cannot send ${channel} codes`);
  if (purpose === 'register' && !registrationOpen(deps.settings, channel)) {
    throw invalidRequest('purpose', `registration by ${channel} code is disabled`);
  }
  await deps.limiter.hit('code_send_ip', context.ip, deps.settings.sendPerIp);
  const cooldown = await deps.cooldown.start(destination);
  await deps.limiter.hit('code_send_to', destinationId(destination), deps.settings.sendPerDestination);

  const user = await findByDestination(deps.accounts, destination);
  const deliver = user !== null || purpose === 'register' || (purpose === 'login' && registrationOpen(deps.settings, channel));
  const issued = await deps.codes.issue(purpose, destination);
  deps.metrics.codesSent.inc({ channel, purpose });
  const audit = { type: 'code_sent', uid: user?.uid ?? null, sid: null, context };
  const described = `${channel} ${purpose} ${maskDestination(destination)}`;

  if (!deliver) {
    await deps.timing.imitate(channel, deps.random.int(0, 1000) / 1000);
    await deps.audit.record({ ...audit, result: 'ok', reason: `${described} (not sent: no account)` });
    return answer();
  }
  try {
    await deps.timing.measure(channel, () => deps.sender.send({ channel, to: destination.to, code: issued.code, purpose }));
  } catch (error) {
    await undoUndelivered(deps, purpose, destination, issued, cooldown);
    deps.metrics.codeDeliveryFailed.inc({ channel });
    deps.log.warn({ channel, purpose, to: maskDestination(destination), error: safeDescription(error) }, 'one-time code not delivered');
    await deps.audit.record({ ...audit, result: 'fail', reason: `${described} (delivery failed)` });
    throw new LatchkeyError('upstream_unavailable', 'the code could not be sent; try again shortly');
  }
  await deps.audit.record({ ...audit, result: 'ok', reason: described });
  return answer();
}

const answer = (): SendCodeAnswer => ({ status: 200, resend_after: RESEND_COOLDOWN_SECONDS });

/** A code nobody received must not stay guessable, and the user may ask again at once. */
async function undoUndelivered(
  deps: CodeFlowDeps,
  purpose: CodePurpose,
  destination: Destination,
  issued: IssuedCode,
  cooldown: string,
): Promise<void> {
  await deps.codes.withdraw(purpose, destination, issued.stored);
  await deps.cooldown.release(destination, cooldown);
}

/** Adapters' SenderError messages are built to be loggable; anything else is logged by its name only. */
function safeDescription(error: unknown): string {
  if (error instanceof SenderError) return error.message;
  return error instanceof Error ? error.name : 'unknown error';
}
