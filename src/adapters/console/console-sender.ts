import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Clock } from '../../ports/clock.ts';
import { SenderError, type CodeMessage, type NoticeMessage, type Sender, type SenderLogger } from '../../ports/sender.ts';

export interface ConsoleSenderOptions {
  /** `<data_dir>/outbox.jsonl`: one JSON line per code, for local use and tests. */
  readonly outboxPath: string;
  readonly clock: Clock;
  readonly log: SenderLogger;
}

/**
 * Development sender: nothing leaves the machine. The code goes to the outbox file only (owner-only
 * permissions); the log line says a code was written, never which, because logs get shipped and kept.
 */
export function createConsoleSender(options: ConsoleSenderOptions): Sender {
  const { outboxPath, clock, log } = options;
  const write = async (message: CodeMessage | NoticeMessage): Promise<void> => {
    const { masked: _masked, ...written } = message;
    const line = `${JSON.stringify({ at: clock.now(), ...written })}\n`;
    try {
      await mkdir(dirname(outboxPath), { recursive: true });
      await appendFile(outboxPath, line, { mode: 0o600 });
    } catch (error) {
      throw new SenderError(`outbox not writable (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  return {
    channels: ['sms', 'email'],
    async notify(message: NoticeMessage): Promise<void> {
      await write(message);
      log.info({ channel: message.channel, kind: message.kind, to: message.masked, outbox: outboxPath }, 'notice written to the outbox (console sender)');
    },
    async send(message: CodeMessage): Promise<void> {
      await write(message);
      log.info(
        { channel: message.channel, purpose: message.purpose, to: message.masked, outbox: outboxPath },
        'one-time code written to the outbox (console sender)',
      );
    },
    async close(): Promise<void> {},
  };
}
