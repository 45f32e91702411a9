import { pino, type Logger } from 'pino';
import type { LogLevel } from './config/config.ts';

/** Structured logs that never carry tokens, codes or passwords (STYLE.md). */
export function createLogger(level: LogLevel): Logger {
  return pino({
    level,
    redact: {
      paths: ['req.headers.token', 'req.headers.authorization', 'req.headers.cookie', '*.password', '*.new_password', '*.token', '*.code'],
      censor: '[redacted]',
    },
  });
}
