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
 * POST /v1/user/code/send. The answer, the store writes, the cooldown, the limits and the metrics
 * are the same whether or not an account exists, and so is the time taken (the answer is due a fixed
 * time after the request, send-timing.ts): octo-server's code routes told anyone which numbers and
 * emails had accounts. A login or reset code for an address without an
 * account is made and stored like any other, just never delivered.
 */
export async function sendCode(
  deps: CodeFlowDeps,
  purpose: CodePurpose,
  destination: Destination,
  context: AuditContext,
): Promise<SendCodeAnswer> {
  const deadline = deps.timing.deadline();
  const { channel } = destination;
  if (!deps.sender.channels.includes(channel)) throw invalidRequest('channel', `this server cannot send ${channel} codes`);
  if (purpose === 'register' && !registrationOpen(deps.settings, channel)) {
    throw invalidRequest('purpose', `registration by ${channel} code is disabled`);
  }
  const requester = deps.limiter.requester(context.ip);
  const cooldown = await reserveSend(deps, destination, requester);
  // Nothing below runs for a refused send: the codes already out (the one in the owner's inbox) stay usable.
  const user = await findByDestination(deps.accounts, destination);
  const deliver = user !== null || purpose === 'register' || (purpose === 'login' && registrationOpen(deps.settings, channel));
  const issued = await deps.codes.issue(purpose, destination);
  deps.metrics.codesSent.inc({ channel, purpose });
  const sent: Sent = { purpose, destination, requester, issued, cooldown, context, uid: user?.uid ?? null };

  if (!deliver) {
    await recordSent(deps, sent, 'ok', '(not sent: no account)');
    await deps.timing.until(deadline);
    return answer();
  }
  const outcome = await deps.timing.race(deadline, deliverCode(deps, sent));
  if (outcome === 'late') return answer(); // deliverCode finishes (and cleans up after a failure) on its own
  await deps.timing.until(deadline);
  if (outcome === 'failed') throw new LatchkeyError('upstream_unavailable', 'the code could not be sent; try again shortly');
  return answer();
}

const answer = (): SendCodeAnswer => ({ status: 200, resend_after: RESEND_COOLDOWN_SECONDS });

/**
 * The limits, cheapest refusal first. Keyed so that one requester cannot use up another's (docs/security.md §2,
 * item 7): the cooldown and `code_send_to` count per (destination, requester); only the higher
 * `code_send_to_all` ceiling, which bounds what a destination can cost in SMS, is shared.
 */
async function reserveSend(deps: CodeFlowDeps, destination: Destination, requester: string): Promise<string> {
  const destination_ = destinationId(destination);
  await deps.limiter.hit('code_send_ip', requester, deps.settings.sendPerIp);
  const cooldown = await deps.cooldown.start(destination, requester);
  await deps.limiter.hit('code_send_to', `${destination_}:${requester}`, deps.settings.sendPerDestination);
  await deps.limiter.hit('code_send_to_all', destination_, deps.settings.sendPerDestinationAll);
  return cooldown;
}

interface Sent {
  readonly purpose: CodePurpose;
  readonly destination: Destination;
  readonly requester: string;
  readonly issued: IssuedCode;
  readonly cooldown: string;
  readonly context: AuditContext;
  readonly uid: string | null;
}

/** Never rejects: a failure is cleaned up, counted, logged and audited here, answered or not. */
async function deliverCode(deps: CodeFlowDeps, sent: Sent): Promise<'delivered' | 'failed'> {
  const { purpose, destination, issued } = sent;
  try {
    await deps.sender.send({ channel: destination.channel, to: destination.to, masked: maskDestination(destination), code: issued.code, purpose });
  } catch (error) {
    deps.metrics.codeDeliveryFailed.inc({ channel: destination.channel });
    deps.log.warn({ channel: destination.channel, purpose, to: maskDestination(destination), error: safeDescription(error) }, 'one-time code not delivered');
    // The store may be what failed too: a code that cannot be withdrawn still dies with its TTL.
    await undoUndelivered(deps, sent).catch((cleanup: unknown) =>
      deps.log.warn({ channel: destination.channel, purpose, error: safeDescription(cleanup) }, 'undelivered one-time code not withdrawn'));
    await recordSent(deps, sent, 'fail', '(delivery failed)');
    return 'failed';
  }
  await recordSent(deps, sent, 'ok', ''); // the audit trail never throws
  return 'delivered';
}

async function recordSent(deps: CodeFlowDeps, sent: Sent, result: 'ok' | 'fail', note: string): Promise<void> {
  const described = `${sent.destination.channel} ${sent.purpose} ${maskDestination(sent.destination)}`;
  await deps.audit.record({
    type: 'code_sent', uid: sent.uid, sid: null, context: sent.context, result, reason: note === '' ? described : `${described} ${note}`,
  });
}

/** A code nobody received must not stay guessable, and the user may ask again at once. */
async function undoUndelivered(deps: CodeFlowDeps, sent: Sent): Promise<void> {
  await deps.codes.withdraw(sent.purpose, sent.destination, sent.issued.nonce);
  await deps.cooldown.release(sent.destination, sent.requester, sent.cooldown);
}

/** Adapters' SenderError messages are built to be loggable; anything else is logged by its name only. */
function safeDescription(error: unknown): string {
  if (error instanceof SenderError) return error.message;
  return error instanceof Error ? error.name : 'unknown error';
}
