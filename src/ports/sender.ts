/**
 * Sender: delivers a one-time code to a phone (SMS) or a mailbox (docs/design.md §4). Adapters: console
 * (development outbox), smtp (email) and webhook (an HTTP gateway, usually for SMS).
 */
export type CodeChannel = 'sms' | 'email';
/** `verify`: a signed-in user proves an address the account holds (POST /v1/user/verify_address). */
export type CodePurpose = 'login' | 'register' | 'reset_password' | 'verify';

export const CODE_CHANNELS: readonly CodeChannel[] = ['sms', 'email'];
export const CODE_PURPOSES: readonly CodePurpose[] = ['login', 'register', 'reset_password', 'verify'];

export interface CodeMessage {
  readonly channel: CodeChannel;
  /** Normalized: a lower-cased email, or `zone-phone` digits. */
  readonly to: string;
  /** `to` masked for logs (`al***@example.test`): enough to recognise, not enough to contact. */
  readonly masked: string;
  readonly code: string;
  readonly purpose: CodePurpose;
}

/** A notice to an account's own verified address (the new-device alert, src/flows/alerts/). */
export interface NoticeMessage {
  readonly channel: 'email';
  readonly to: string;
  readonly masked: string;
  readonly kind: 'new_device';
  readonly subject: string;
  /** Plain text; it may hold a one-time link, so adapters never log it. */
  readonly text: string;
}

export interface Sender {
  /** The channels this sender can deliver; the others are refused before any code is made. */
  readonly channels: readonly CodeChannel[];
  /** Resolves once the message is accepted for delivery; throws SenderError otherwise. */
  send(message: CodeMessage): Promise<void>;
  /** Email notices; a sender without it sends no alerts (the webhook's gateway takes codes only). */
  notify?(message: NoticeMessage): Promise<void>;
  close(): Promise<void>;
}

/**
 * A delivery that failed. Its message is safe to log: adapters build it from status codes and error
 * codes only, never from the message body (which holds the code).
 */
export class SenderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SenderError';
  }
}

/** What adapters and flows log through (a pino logger fits). */
export interface SenderLogger {
  info(object: Record<string, unknown>, message: string): void;
  warn(object: Record<string, unknown>, message: string): void;
}
