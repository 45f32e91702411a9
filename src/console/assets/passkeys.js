// @ts-check
/**
 * Passkeys in the console (docs/api.md §14): the account page's Passkeys card (add, list, rename,
 * remove) and the sign-in page's "Sign in with a passkey" button. latchkey's options and the
 * answers it takes are WebAuthn JSON; the browser's API wants ArrayBuffers, converted here.
 * Adding or removing a passkey needs a recent proof (step-up): when the API asks for one, the card
 * asks for the password and then does what was asked.
 */
import { api, ApiError } from './api.js';
import { thisDevice } from './device.js';
import { busy, byId, confirmAction, h, onSubmit, say } from './dom.js';
import { t } from './i18n.js';
import { absoluteTime, browserWords, describeError, relativeTime } from './messages.js';

/**
 * @typedef {{id: string, name: string, transports: string[], created_at: number, last_used_at: number | null}} PasskeyView
 */

/** Whether this browser can make and use passkeys here (WebAuthn needs a secure context). */
export function passkeysSupported() {
  return window.isSecureContext && typeof window.PublicKeyCredential === 'function' && navigator.credentials !== undefined;
}

/** @param {string} text base64url @returns {ArrayBuffer} */
function bytes(text) {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0)).buffer;
}

/** @param {ArrayBuffer} buffer @returns {string} base64url */
function base64url(buffer) {
  let binary = '';
  for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * The credential as `PublicKeyCredential.toJSON()` gives it (built by hand where a browser lacks it).
 * @param {PublicKeyCredential} credential
 * @returns {Record<string, unknown>}
 */
function credentialJson(credential) {
  const withJson = /** @type {PublicKeyCredential & {toJSON?: () => Record<string, unknown>}} */ (credential);
  if (typeof withJson.toJSON === 'function') return withJson.toJSON();
  const response = credential.response;
  /** @type {Record<string, unknown>} */
  const json = { clientDataJSON: base64url(response.clientDataJSON) };
  if (response instanceof AuthenticatorAttestationResponse) {
    json.attestationObject = base64url(response.attestationObject);
    json.transports = response.getTransports();
  } else if (response instanceof AuthenticatorAssertionResponse) {
    json.authenticatorData = base64url(response.authenticatorData);
    json.signature = base64url(response.signature);
    if (response.userHandle !== null) json.userHandle = base64url(response.userHandle);
  }
  return {
    id: credential.id,
    rawId: base64url(credential.rawId),
    type: credential.type,
    response: json,
    clientExtensionResults: credential.getClientExtensionResults(),
    ...(credential.authenticatorAttachment === null ? {} : { authenticatorAttachment: credential.authenticatorAttachment }),
  };
}

/**
 * What went wrong, in the user's words: the API's refusal, or the browser's (cancelled, timed out).
 * @param {unknown} failure
 * @param {Record<string, string>} [overrides]
 */
function failureWords(failure, overrides = {}) {
  if (failure instanceof ApiError) return describeError(failure, overrides);
  if (failure instanceof DOMException && failure.name === 'InvalidStateError') return t('passkeys.duplicate');
  return t('passkeys.cancelled');
}

/**
 * The sign-in page's passkey button: shown where the browser can use passkeys.
 * @param {() => void} onSignedIn
 */
export function passkeySignIn(onSignedIn) {
  if (!passkeysSupported()) return;
  byId('passkey', HTMLElement).hidden = false;
  const button = byId('passkey-sign-in', HTMLButtonElement);
  const error = byId('passkey-error', HTMLElement);
  button.addEventListener('click', () => void busy(button, async () => {
    say(error, '');
    try {
      const options = await api('POST', '/v1/user/passkeys/login/options');
      const credential = /** @type {PublicKeyCredential | null} */ (await navigator.credentials.get({
        publicKey: { ...options, challenge: bytes(options.challenge), allowCredentials: [] },
      }));
      if (credential === null) throw new DOMException('no credential', 'NotAllowedError');
      await api('POST', '/v1/user/passkeys/login/verify', { ...credentialJson(credential), flag: 1, device: thisDevice() });
    } catch (failure) {
      say(error, failureWords(failure, { invalid_credentials: t('passkeys.signin_refused'), expired: t('passkeys.signin_expired') }));
      return;
    }
    onSignedIn();
  }));
}

/**
 * The account page's Passkeys card. Answers a function that shows the list again.
 * @param {() => Promise<void>} onChanged told after a passkey was added or removed (the activity list)
 * @returns {() => Promise<void>}
 */
export function passkeysCard(onChanged) {
  const card = byId('passkeys-card', HTMLElement);
  const list = byId('passkeys', HTMLUListElement);
  const status = byId('passkeys-status', HTMLElement);
  const error = byId('passkeys-error', HTMLElement);
  const stepUpForm = byId('passkey-stepup-form', HTMLFormElement);
  const stepUpPassword = byId('passkey-stepup-password', HTMLInputElement);
  const add = byId('passkey-add', HTMLButtonElement);
  card.hidden = false;
  /** @type {(() => Promise<void>) | null} */
  let pending = null;

  /**
   * Runs an action that may need step-up: asked for, the password form shows, and the action runs
   * again once it was confirmed.
   * @param {() => Promise<void>} action
   */
  async function withStepUp(action) {
    say(error, '');
    say(status, '');
    try {
      await action();
    } catch (failure) {
      if (failure instanceof ApiError && failure.code === 'step_up_required') {
        pending = action;
        stepUpForm.hidden = false;
        stepUpPassword.focus();
        return;
      }
      say(error, failureWords(failure, { not_found: t('passkeys.gone'), invalid_credentials: t('passkeys.not_verified') }));
    }
  }

  onSubmit(stepUpForm, async () => {
    say(error, '');
    try {
      await api('POST', '/v1/user/step_up', { method: 'password', password: stepUpPassword.value });
    } catch (failure) {
      say(error, describeError(failure, { invalid_credentials: t('passkeys.stepup_wrong') }));
      stepUpPassword.select();
      return;
    }
    stepUpForm.reset();
    stepUpForm.hidden = true;
    const action = pending;
    pending = null;
    if (action !== null) await withStepUp(action);
  });

  async function addPasskey() {
    const options = await api('POST', '/v1/user/passkeys/register/options');
    const credential = /** @type {PublicKeyCredential | null} */ (await navigator.credentials.create({
      publicKey: {
        ...options,
        challenge: bytes(options.challenge),
        user: { ...options.user, id: bytes(options.user.id) },
        excludeCredentials: (options.excludeCredentials ?? []).map((/** @type {{id: string}} */ c) => ({ ...c, id: bytes(c.id) })),
      },
    }));
    if (credential === null) throw new DOMException('no credential', 'NotAllowedError');
    const name = (browserWords(navigator.userAgent) || t('passkeys.default_name')).slice(0, 64);
    await api('POST', '/v1/user/passkeys/register/verify', { ...credentialJson(credential), name });
    say(status, t('passkeys.added'));
    await Promise.all([show(), onChanged()]);
  }

  add.disabled = !passkeysSupported();
  if (!passkeysSupported()) say(error, t('passkeys.unsupported'));
  add.addEventListener('click', () => void busy(add, () => withStepUp(addPasskey)));

  /** @param {PasskeyView} passkey @param {HTMLElement} title */
  function renameForm(passkey, title) {
    const input = h('input', { value: passkey.name, maxlength: '64', required: true, 'aria-label': t('passkeys.name') });
    const cancel = h('button', { type: 'button', class: 'small ghost' }, t('passkeys.cancel'));
    const form = h('form', { class: 'inline-form' }, input, h('button', { type: 'submit', class: 'small primary' }, t('passkeys.save')), cancel);
    cancel.addEventListener('click', () => form.replaceWith(title));
    onSubmit(form, async () => {
      try {
        await api('PATCH', `/v1/user/passkeys/${encodeURIComponent(passkey.id)}`, { name: input.value.trim() });
      } catch (failure) {
        say(error, failureWords(failure, { not_found: t('passkeys.gone') }));
        return;
      }
      say(status, t('passkeys.renamed'));
      await show();
    });
    title.replaceWith(form);
    input.select();
  }

  /** @param {PasskeyView} passkey */
  function item(passkey) {
    const title = h('span', { class: 'item-title' }, passkey.name);
    const rename = h('button', { type: 'button', class: 'small', 'aria-label': t('passkeys.rename_label', { name: passkey.name }) }, t('passkeys.rename'));
    rename.addEventListener('click', () => renameForm(passkey, title));
    const remove = h('button', { type: 'button', class: 'small danger', 'aria-label': t('passkeys.remove_label', { name: passkey.name }) }, t('passkeys.remove'));
    remove.addEventListener('click', () => void busy(remove, async () => {
      const sure = await confirmAction({
        title: t('passkeys.remove_title'), text: t('passkeys.remove_text', { name: passkey.name }), action: t('passkeys.remove'), danger: true,
      });
      if (!sure) return;
      await withStepUp(async () => {
        await api('DELETE', `/v1/user/passkeys/${encodeURIComponent(passkey.id)}`);
        say(status, t('passkeys.removed'));
        await Promise.all([show(), onChanged()]);
      });
    }));
    const used = passkey.last_used_at;
    return h('li', { 'data-passkey': passkey.id },
      h('div', { class: 'item-main' },
        title,
        h('span', { class: 'item-meta' },
          t('passkeys.added_at', { time: absoluteTime(passkey.created_at) }), ' · ',
          ...(used === null ? [t('passkeys.never_used')] : [`${t('passkeys.last_used')} `, h('time', { datetime: new Date(used).toISOString(), title: absoluteTime(used) }, relativeTime(used))])),
      ),
      h('div', { class: 'item-actions' }, rename, remove),
    );
  }

  async function show() {
    /** @type {{passkeys: PasskeyView[]}} */
    const { passkeys } = await api('GET', '/v1/user/passkeys');
    list.replaceChildren(...passkeys.map(item));
    if (passkeys.length === 0) list.append(h('li', { class: 'empty' }, t('passkeys.none')));
  }

  return show;
}
