// @ts-check
/**
 * /account's "Two-step verification" card (docs/api.md §13): whether TOTP is on, turning it on (a
 * QR code and its key, then a code from the app, then the 10 recovery codes, shown this once), new
 * recovery codes, and turning it off. Those routes want a session that showed a factor recently:
 * when one answers 403 `step_up_required`, a dialog asks for the password (or a code from the
 * app), POST /v1/user/step_up proves it, and the action is tried again.
 *
 * Its own module, loaded by account.html beside account.js: it needs nothing of that page's state.
 */
import { api, ApiError } from './api.js';
import { busy, byId, confirmAction, h, onSubmit, say } from './dom.js';
import { t, tCount } from './i18n.js';
import { describeError } from './messages.js';

/** @typedef {{totp: boolean, recovery_codes_left: number, passkeys: number, totp_available: boolean}} MfaStatus */
/** @typedef {'password' | 'totp'} StepUpMethod */

/**
 * Runs `action`; when it answers 403 `step_up_required`, asks the user to confirm it is them and
 * runs it once more. Resolves to undefined when the user cancels the dialog.
 * @template T
 * @param {() => Promise<T>} action
 * @returns {Promise<T | undefined>}
 */
export async function withStepUp(action) {
  try {
    return await action();
  } catch (error) {
    if (!(error instanceof ApiError && error.code === 'step_up_required')) throw error;
    const offered = Array.isArray(error.details?.methods) ? error.details.methods : ['password'];
    /** @type {StepUpMethod[]} */
    const methods = offered.filter(/** @returns {m is StepUpMethod} */ (m) => m === 'password' || m === 'totp');
    if (!(await askStepUp(methods.length === 0 ? ['password'] : methods))) return undefined;
    return action();
  }
}

/**
 * The step-up dialog: resolves true once POST /v1/user/step_up accepted what the user typed, false
 * if they cancelled. Wrong answers are said in the dialog, which stays open.
 * @param {StepUpMethod[]} methods
 * @returns {Promise<boolean>}
 */
function askStepUp(methods) {
  const secret = h('input', { id: 'step-up-secret', type: 'password', autocomplete: 'current-password', required: true, maxlength: '512' });
  const label = h('label', { for: 'step-up-secret' });
  const text = h('p', { id: 'step-up-text', class: 'muted' });
  const error = h('p', { id: 'step-up-error', class: 'error', role: 'alert' });
  const swap = h('button', { type: 'button', class: 'link', id: 'step-up-swap' });
  const confirm = h('button', { type: 'submit', class: 'primary' }, t('mfa.step_up_confirm'));
  const cancel = h('button', { type: 'button', value: 'no' }, t('dialog.cancel'));
  const form = h('form', {},
    h('h2', { id: 'step-up-title' }, t('mfa.step_up_title')),
    text,
    h('div', { class: 'field' }, label, secret),
    error,
    methods.includes('totp') && methods.includes('password') && h('p', { class: 'small spaced' }, swap),
    h('div', { class: 'dialog-actions' }, cancel, confirm));
  const dialog = /** @type {HTMLDialogElement} */ (h('dialog', { id: 'step-up', 'aria-labelledby': 'step-up-title', 'aria-describedby': 'step-up-text' }, form));

  /** @type {StepUpMethod} */
  let method = methods.includes('password') ? 'password' : 'totp';
  const show = () => {
    const code = method === 'totp';
    say(text, t(code ? 'mfa.step_up_text_code' : 'mfa.step_up_text'));
    say(label, t(code ? 'mfa.step_up_code' : 'mfa.step_up_password'));
    say(swap, t(code ? 'mfa.step_up_use_password' : 'mfa.step_up_use_code'));
    secret.type = code ? 'text' : 'password';
    secret.autocomplete = code ? 'one-time-code' : 'current-password';
    secret.inputMode = code ? 'numeric' : '';
    secret.value = '';
    say(error, '');
  };
  show();
  swap.addEventListener('click', () => {
    method = method === 'password' ? 'totp' : 'password';
    show();
    secret.focus();
  });

  return new Promise((resolve) => {
    /** @param {boolean} proven */
    const finish = (proven) => {
      dialog.close();
      dialog.remove();
      resolve(proven);
    };
    cancel.addEventListener('click', () => finish(false));
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      finish(false);
    });
    onSubmit(form, async () => {
      say(error, '');
      const body = method === 'password' ? { method, password: secret.value } : { method, code: secret.value.trim() };
      try {
        await api('POST', '/v1/user/step_up', body);
      } catch (failure) {
        say(error, describeError(failure, {
          invalid_credentials: t(method === 'password' ? 'mfa.step_up_wrong_password' : 'mfa.step_up_wrong_code'),
        }));
        secret.select();
        return;
      }
      finish(true);
    });
    document.body.append(dialog);
    dialog.showModal();
    secret.focus();
  });
}

/** @param {string} text */
function showError(text) {
  say(byId('mfa-error', HTMLElement), text);
}

/** @param {string} text */
function showDone(text) {
  say(byId('mfa-done', HTMLElement), text);
}

function clearMessages() {
  showError('');
  showDone('');
}

/** The card's status line and which buttons it offers. @param {MfaStatus} status */
function showStatus(status) {
  byId('mfa', HTMLElement).hidden = !status.totp_available && !status.totp;
  const line = byId('mfa-status', HTMLElement);
  line.dataset.on = String(status.totp);
  say(line, status.totp
    ? t('mfa.status_with_codes', { status: t('mfa.status_on'), codes: tCount('mfa.codes_left', status.recovery_codes_left) })
    : t('mfa.status_off'));
  byId('mfa-turn-on', HTMLButtonElement).hidden = status.totp || !status.totp_available;
  byId('mfa-new-codes', HTMLButtonElement).hidden = !status.totp;
  byId('mfa-turn-off', HTMLButtonElement).hidden = !status.totp;
}

async function refresh() {
  /** @type {MfaStatus} */
  const status = await api('GET', '/v1/user/mfa');
  showStatus(status);
}

/**
 * The SVG is latchkey's own (the qrcode library's output), still shown as an image rather than
 * parsed into the page: an <img> runs no script whatever the markup says.
 * @param {string} svg
 */
function svgImage(svg) {
  const bytes = new TextEncoder().encode(svg);
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return `data:image/svg+xml;base64,${btoa(binary)}`;
}

/** @param {string[]} codes */
function showCodes(codes) {
  byId('mfa-setup', HTMLElement).hidden = true;
  byId('mfa-code-list', HTMLOListElement).replaceChildren(...codes.map((code) => h('li', {}, code)));
  say(byId('mfa-copy-status', HTMLElement), '');
  const panel = byId('mfa-codes', HTMLElement);
  panel.dataset.codes = String(codes.length);
  panel.hidden = false;
  byId('mfa-copy', HTMLButtonElement).focus();
}

/** @returns {string[]} */
function shownCodes() {
  return [...byId('mfa-code-list', HTMLOListElement).querySelectorAll('li')].map((item) => item.textContent ?? '');
}

function wireCodes() {
  const status = byId('mfa-copy-status', HTMLElement);
  byId('mfa-copy', HTMLButtonElement).addEventListener('click', () => {
    navigator.clipboard.writeText(shownCodes().join('\n')).then(
      () => say(status, t('mfa.copied')),
      () => say(status, t('mfa.copy_failed')),
    );
  });
  byId('mfa-download', HTMLButtonElement).addEventListener('click', () => {
    const file = new Blob([`${shownCodes().join('\n')}\n`], { type: 'text/plain' });
    const link = h('a', { href: URL.createObjectURL(file), download: t('mfa.download_name') });
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 0);
  });
  byId('mfa-codes-done', HTMLButtonElement).addEventListener('click', () => {
    // Gone from the page for good: they were shown this once.
    byId('mfa-code-list', HTMLOListElement).replaceChildren();
    byId('mfa-codes', HTMLElement).hidden = true;
    byId('mfa-turn-on', HTMLButtonElement).focus();
  });
}

function wireTurnOn() {
  const turnOn = byId('mfa-turn-on', HTMLButtonElement);
  const setup = byId('mfa-setup', HTMLElement);
  const form = byId('mfa-enable-form', HTMLFormElement);
  const code = byId('mfa-enable-code', HTMLInputElement);
  const error = byId('mfa-enable-error', HTMLElement);
  turnOn.addEventListener('click', () => void busy(turnOn, async () => {
    clearMessages();
    /** @type {{secret: string, otpauth_url: string, qrcode_svg: string} | undefined} */
    let drawn;
    try {
      drawn = await withStepUp(() => api('POST', '/v1/user/mfa/totp/setup'));
    } catch (failure) {
      showError(describeError(failure, { conflict: t('mfa.already_on'), not_found: t('mfa.unavailable') }));
      await refresh().catch(() => {});
      return;
    }
    if (drawn === undefined) return;
    byId('mfa-qr', HTMLImageElement).src = svgImage(drawn.qrcode_svg);
    say(byId('mfa-secret', HTMLElement), drawn.secret);
    code.value = '';
    say(error, '');
    byId('mfa-codes', HTMLElement).hidden = true;
    setup.hidden = false;
    // One secret at a time: "Turn on" again would draw another and void this one's QR code.
    turnOn.hidden = true;
    code.focus();
  }));
  byId('mfa-setup-cancel', HTMLButtonElement).addEventListener('click', () => {
    setup.hidden = true;
    byId('mfa-qr', HTMLImageElement).removeAttribute('src');
    say(byId('mfa-secret', HTMLElement), '');
    turnOn.hidden = false;
    turnOn.focus();
  });
  onSubmit(form, async () => {
    say(error, '');
    /** @type {{recovery_codes: string[]} | undefined} */
    let enabled;
    try {
      enabled = await withStepUp(() => api('POST', '/v1/user/mfa/totp/enable', { code: code.value.trim() }));
    } catch (failure) {
      say(error, describeError(failure, {
        invalid_credentials: t('mfa.enable_wrong'),
        invalid_request: t('mfa.enable_invalid'),
        conflict: t('mfa.already_on'),
      }));
      code.select();
      return;
    }
    if (enabled === undefined) return;
    byId('mfa-qr', HTMLImageElement).removeAttribute('src');
    say(byId('mfa-secret', HTMLElement), '');
    showDone(t('mfa.enabled'));
    await refresh().catch((failure) => showError(describeError(failure)));
    showCodes(enabled.recovery_codes);
  });
}

function wireNewCodes() {
  const button = byId('mfa-new-codes', HTMLButtonElement);
  button.addEventListener('click', () => void busy(button, async () => {
    clearMessages();
    const sure = await confirmAction({ title: t('mfa.new_codes_title'), text: t('mfa.new_codes_text'), action: t('mfa.new_codes_action') });
    if (!sure) return;
    try {
      /** @type {{recovery_codes: string[]} | undefined} */
      const fresh = await withStepUp(() => api('POST', '/v1/user/mfa/recovery_codes'));
      if (fresh === undefined) return;
      await refresh();
      showCodes(fresh.recovery_codes);
    } catch (failure) {
      showError(describeError(failure));
      await refresh().catch(() => {});
    }
  }));
}

function wireTurnOff() {
  const button = byId('mfa-turn-off', HTMLButtonElement);
  button.addEventListener('click', () => void busy(button, async () => {
    clearMessages();
    const sure = await confirmAction({ title: t('mfa.off_title'), text: t('mfa.off_text'), action: t('mfa.off_action'), danger: true });
    if (!sure) return;
    try {
      if ((await withStepUp(() => api('DELETE', '/v1/user/mfa/totp'))) === undefined) return;
      byId('mfa-codes', HTMLElement).hidden = true;
      showDone(t('mfa.turned_off'));
    } catch (failure) {
      // 404: it was off already (turned off from another device); the status below says so.
      if (!(failure instanceof ApiError && failure.code === 'not_found')) showError(describeError(failure));
    }
    await refresh().catch((failure) => showError(describeError(failure)));
  }));
}

async function main() {
  await refresh();
  wireTurnOn();
  wireCodes();
  wireNewCodes();
  wireTurnOff();
  byId('mfa', HTMLElement).dataset.ready = 'true';
}

main().catch((error) => {
  // The page's own start-up reports a server that is down; this card just stays hidden.
  if (!(error instanceof ApiError)) throw error;
});
