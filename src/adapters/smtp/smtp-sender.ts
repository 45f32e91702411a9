import nodemailer from 'nodemailer';
import type { SmtpConfig } from '../../config/config.ts';
import { SenderError, type CodeMessage, type CodePurpose, type NoticeMessage, type Sender } from '../../ports/sender.ts';

const SUBJECTS: Record<CodePurpose, string> = {
  login: 'Your sign-in code',
  register: 'Your sign-up code',
  reset_password: 'Your password reset code',
  verify: 'Your address confirmation code',
};

/** Email through an SMTP relay (nodemailer). SMS is not something SMTP can deliver. */
export function createSmtpSender(config: SmtpConfig): Sender {
  const transport = nodemailer.createTransport({
    host: config.host,
    port: config.port,
    secure: config.secure,
    auth: config.user === undefined ? undefined : { user: config.user, pass: config.pass },
    // A hung relay must not hold the request (and its cooldown) for minutes.
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 20_000,
  });
  return {
    channels: ['email'],
    async send(message: CodeMessage): Promise<void> {
      try {
        await transport.sendMail({ from: config.from, to: message.to, subject: SUBJECTS[message.purpose], text: body(message) });
      } catch (error) {
        throw new SenderError(`smtp delivery failed (${describe(error)})`);
      }
    },
    async notify(message: NoticeMessage): Promise<void> {
      try {
        await transport.sendMail({ from: config.from, to: message.to, subject: message.subject, text: message.text });
      } catch (error) {
        throw new SenderError(`smtp delivery failed (${describe(error)})`);
      }
    },
    async close(): Promise<void> {
      transport.close();
    },
  };
}

function body(message: CodeMessage): string {
  return `${message.code} is your code. It expires in 5 minutes.\n\n` +
    'If you did not ask for it, ignore this message; nobody can use the code without it.\n';
}

/**
 * nodemailer's messages can quote the server's reply to the DATA command, which may echo the body
 * (and so the code): only its error code and the SMTP status go to the logs.
 */
function describe(error: unknown): string {
  if (error === null || typeof error !== 'object') return 'error';
  const { code, responseCode } = error as { code?: unknown; responseCode?: unknown };
  return [typeof code === 'string' ? code : 'error', typeof responseCode === 'number' ? String(responseCode) : '']
    .filter((part) => part !== '')
    .join(' ');
}
