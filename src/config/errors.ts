/**
 * The one kind of error a bad configuration gives: one line naming the key, never a secret value.
 */
/**
 * Passed as the value of a ConfigError where the value must not be shown: a key nobody knows (a
 * misspelt `client_secret` holds a secret all the same) or a place where an object was expected.
 */
export const HIDDEN_VALUE: unique symbol = Symbol('hidden config value');

export class ConfigError extends Error {
  /** `problem` replaces "VALUE is not allowed; expected ALLOWED" for errors that show no value at all. */
  constructor(key: string, allowed: string, value: unknown, problem?: string) {
    super(`config ${key}: ${problem ?? `${shownValue(key, value)} is not allowed; expected ${allowed}`}`);
    this.name = 'ConfigError';
  }
}

/** Key path segments whose values are secrets: token_key, client_secret, service_keys, pass, manager_token… */
const SECRET_SEGMENT = /(^|_)(secret|secrets|pass|password|passphrase|token|tokens|key|keys|bearer)$/i;
const MAX_SHOWN = 120;
/** What the existing messages always said in a secret's place. */
const HIDDEN_SHOWN_AS = '"***"';

/**
 * A config error ends up in logs and journals, so a secret is never echoed (whatever the check that
 * failed), an object is never dumped (it may hold one), and a URL is shown without its password.
 */
function shownValue(key: string, value: unknown): string {
  const secret = key.split('.').some((segment) => SECRET_SEGMENT.test(segment.replace(/\[\d+\]$/, '')));
  const nested = value !== null && typeof value === 'object' && !(Array.isArray(value) && value.every((item) => item === null || typeof item !== 'object'));
  if (value === HIDDEN_VALUE || secret || nested) return HIDDEN_SHOWN_AS;
  const text = JSON.stringify(value) ?? String(value);
  const withoutCredentials = text.replace(/\/\/[^/@\s"]*@/g, '//***@');
  return withoutCredentials.length > MAX_SHOWN ? `${withoutCredentials.slice(0, MAX_SHOWN)}…` : withoutCredentials;
}

