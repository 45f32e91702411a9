// @ts-check
/**
 * The second step of a sign-in (docs/api.md §14). A password or one-time-code sign-in of an
 * account with two-step verification answers `{mfa_required: true, mfa_ticket, methods}` and no
 * session; this form sends the ticket with a code from the authenticator app (or a recovery code)
 * to POST /v1/user/mfa/verify, whose login answer sets the session cookie like any other sign-in
 * (cookie mode, src/http/console-session.ts). A dead ticket (410: too old, used, too many wrong
 * codes) sends the user back to the first step, saying why.
 */
import { api, ApiError } from './api.js';
import { byId, onSubmit, say } from './dom.js';
import { t } from './i18n.js';
import { describeError } from './messages.js';

/** @typedef {{mfa_required: true, mfa_ticket: string, methods: string[]}} MfaChallenge */

/**
 * Whether a first step's answer asks for the second step.
 * @param {unknown} answer
 * @returns {answer is MfaChallenge}
 */
export function needsSecondStep(answer) {
  if (answer === null || typeof answer !== 'object') return false;
  const challenge = /** @type {Record<string, unknown>} */ (answer);
  return challenge.mfa_required === true && typeof challenge.mfa_ticket === 'string';
}

/** What the first step showed, hidden while the second is asked, as it was. @type {Map<HTMLElement, boolean>} */
const hiddenForSecondStep = new Map();

/** The elements of the sign-in card that belong to the first step. */
function firstStepParts() {
  const card = byId('panel-mfa', HTMLElement).parentElement;
  const kept = new Set(['notice', 'page-error', 'panel-mfa']);
  return [...(card?.children ?? [])].filter(
    /** @returns {part is HTMLElement} */ (part) => part instanceof HTMLElement && part.tagName !== 'HEADER' && !kept.has(part.id),
  );
}

/** @type {MfaChallenge | null} */
let current = null;
/** @type {'totp' | 'recovery'} */
let method = 'totp';
/** @type {() => void} */
let signedIn = () => {};

function showMethod() {
  const recovery = method === 'recovery';
  const code = byId('mfa-second-code', HTMLInputElement);
  say(byId('mfa-second-help', HTMLElement), t(recovery ? 'mfa.second_recovery_help' : 'mfa.second_totp_help'));
  say(byId('mfa-second-label', HTMLElement), t(recovery ? 'mfa.second_recovery_label' : 'mfa.second_totp_label'));
  say(byId('mfa-second-switch', HTMLButtonElement), t(recovery ? 'mfa.second_use_totp' : 'mfa.second_use_recovery'));
  code.inputMode = recovery ? 'text' : 'numeric';
  code.autocomplete = recovery ? 'off' : 'one-time-code';
  code.value = '';
  say(byId('mfa-second-error', HTMLElement), '');
}

/** Back to the first step, with why in the page's error line (or nothing). @param {string} why */
function backToStart(why) {
  current = null;
  byId('panel-mfa', HTMLElement).hidden = true;
  for (const [part, wasHidden] of hiddenForSecondStep) part.hidden = wasHidden;
  hiddenForSecondStep.clear();
  say(byId('page-error', HTMLElement), why);
  const password = document.getElementById('password');
  if (password instanceof HTMLInputElement && password.offsetParent !== null) {
    password.value = '';
    password.focus();
  }
}

let wired = false;

function wire() {
  if (wired) return;
  wired = true;
  const form = byId('mfa-second-form', HTMLFormElement);
  const code = byId('mfa-second-code', HTMLInputElement);
  const error = byId('mfa-second-error', HTMLElement);
  onSubmit(form, async () => {
    if (current === null) return;
    say(error, '');
    // Authenticator codes are often read out in groups ("123 456"); recovery codes are typed as shown.
    const typed = method === 'totp' ? code.value.replace(/\s+/g, '') : code.value.trim();
    try {
      await api('POST', '/v1/user/mfa/verify', { mfa_ticket: current.mfa_ticket, method, code: typed });
    } catch (failure) {
      if (failure instanceof ApiError && failure.code === 'expired') {
        backToStart(t('mfa.second_expired'));
        return;
      }
      say(error, describeError(failure, {
        invalid_credentials: t(method === 'recovery' ? 'mfa.second_wrong_recovery' : 'mfa.second_wrong_totp'),
        invalid_request: t(method === 'recovery' ? 'mfa.second_wrong_recovery' : 'mfa.second_wrong_totp'),
      }));
      code.select();
      return;
    }
    current = null;
    signedIn();
  });
  byId('mfa-second-switch', HTMLButtonElement).addEventListener('click', () => {
    method = method === 'totp' ? 'recovery' : 'totp';
    showMethod();
    code.focus();
  });
  byId('mfa-second-restart', HTMLButtonElement).addEventListener('click', () => backToStart(''));
}

/**
 * Shows the second step in place of the first.
 * @param {MfaChallenge} challenge
 * @param {() => void} onSignedIn
 */
export function askSecondStep(challenge, onSignedIn) {
  wire();
  current = challenge;
  signedIn = onSignedIn;
  method = challenge.methods.includes('totp') || !challenge.methods.includes('recovery') ? 'totp' : 'recovery';
  byId('mfa-second-switch', HTMLButtonElement).hidden = !(challenge.methods.includes('totp') && challenge.methods.includes('recovery'));
  if (hiddenForSecondStep.size === 0) {
    for (const part of firstStepParts()) {
      hiddenForSecondStep.set(part, part.hidden);
      part.hidden = true;
    }
  }
  say(byId('page-error', HTMLElement), '');
  showMethod();
  byId('panel-mfa', HTMLElement).hidden = false;
  byId('mfa-second-code', HTMLInputElement).focus();
}
