// @ts-check
/**
 * /account's "Two-step verification" card (docs/api.md §14): whether TOTP is on, turning it on (a
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
import { withStepUp } from './step-up.js';

/** @typedef {{totp: boolean, recovery_codes_left: number, passkeys: number, totp_available: boolean}} MfaStatus */

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
