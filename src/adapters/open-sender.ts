import { join } from 'node:path';
import type { Config } from '../config/config.ts';
import type { Clock } from '../ports/clock.ts';
import type { Sender, SenderLogger } from '../ports/sender.ts';
import { createConsoleSender } from './console/console-sender.ts';
import { createSmtpSender } from './smtp/smtp-sender.ts';
import { createWebhookSender } from './webhook/webhook-sender.ts';

/** The configured code sender (`sender.type`); console by default. */
export function openSender(config: Pick<Config, 'sender' | 'dataDir'>, clock: Clock, log: SenderLogger): Sender {
  switch (config.sender.type) {
    case 'smtp':
      return createSmtpSender(config.sender.smtp);
    case 'webhook':
      return createWebhookSender(config.sender.webhook);
    case 'console': {
      const outboxPath = join(config.dataDir, 'outbox.jsonl');
      log.info({ outbox: outboxPath }, 'console sender: one-time codes are written to the outbox, not delivered');
      return createConsoleSender({ outboxPath, clock, log });
    }
  }
}
