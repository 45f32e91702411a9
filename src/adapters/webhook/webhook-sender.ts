import type { WebhookConfig } from '../../config/config.ts';
import { SenderError, type CodeMessage, type Sender } from '../../ports/sender.ts';

/**
 * HTTP gateway (usually for SMS): POST `{channel, to, code, purpose}` as JSON. Any 2xx is delivered;
 * anything else, a timeout or a redirect is a failure. Redirects are refused, because following
 * one would hand the code to a host nobody configured.
 */
export function createWebhookSender(config: WebhookConfig): Sender {
  return {
    channels: config.channels,
    async send(message: CodeMessage): Promise<void> {
      const { channel, to, code, purpose } = message;
      let response: Response;
      try {
        response = await fetch(config.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ channel, to, code, purpose }),
          redirect: 'error',
          signal: AbortSignal.timeout(config.timeoutMs),
        });
      } catch (error) {
        const timedOut = error instanceof DOMException && error.name === 'TimeoutError';
        throw new SenderError(timedOut ? `webhook timed out after ${config.timeoutMs} ms` : 'webhook unreachable');
      }
      // The answer's body is not needed; drop it so the connection can be reused.
      await response.body?.cancel().catch(() => undefined);
      if (!response.ok) throw new SenderError(`webhook answered ${response.status}`);
    },
    async close(): Promise<void> {},
  };
}
