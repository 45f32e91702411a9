// @ts-check
/**
 * The step-up dialog of every console page (docs/api.md §14): the routes that change factors,
 * sign out every other device or act as an administrator want a session that showed a factor
 * recently; when one answers 403 `step_up_required`, a dialog asks for the password (or a code
 * from the app), POST /v1/user/step_up proves it, and the action is tried again. No side effects
 * on import: account.js, two-step.js, passkeys.js and admin.js share it.
 */
import { api, ApiError } from './api.js';
import { h, onSubmit, say } from './dom.js';
import { t } from './i18n.js';
import { describeError } from './messages.js';

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
