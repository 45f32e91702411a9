// @ts-check
/**
 * One-time code sign-in (README "One-time codes"): send a code to an email address or phone
 * number, then sign in with it. The send answer is the same whether or not an account exists, so
 * the page says "we sent a code to …" either way: it knows no more than that.
 */
import { api, ApiError } from './api.js';
import { thisDevice } from './device.js';
import { busy, byId, onSubmit, say } from './dom.js';
import { t } from './i18n.js';
import { describeError } from './messages.js';
import { askSecondStep, needsSecondStep } from './signin-two-step.js';

const SEND_WORDS = {
  invalid_request: t('signin.code_send_invalid'),
  upstream_unavailable: t('signin.code_send_unavailable'),
};

const LOGIN_WORDS = {
  invalid_credentials: t('signin.code_wrong'),
  expired: t('signin.code_expired'),
  invalid_request: t('signin.code_invalid'),
};

/**
 * @param {{email: boolean, sms: boolean}} channels what the server can deliver
 * @param {() => void} onSignedIn
 */
export function codeSignIn(channels, onSignedIn) {
  const sendForm = byId('code-send-form', HTMLFormElement);
  const loginForm = byId('code-login-form', HTMLFormElement);
  const to = byId('code-to', HTMLInputElement);
  const code = byId('code', HTMLInputElement);
  const error = byId('code-error', HTMLElement);
  /** @type {{channel: string, to: string} | null} */
  let sent = null;

  byId('code-channels', HTMLFieldSetElement).hidden = !(channels.email && channels.sms);
  const channel = () => {
    if (!channels.email) return 'sms';
    if (!channels.sms) return 'email';
    const checked = sendForm.querySelector('input[name="channel"]:checked');
    return checked instanceof HTMLInputElement ? checked.value : 'email';
  };
  const showChannel = () => {
    const sms = channel() === 'sms';
    say(byId('code-to-label', HTMLElement), t(sms ? 'signin.code_to_phone' : 'signin.code_to_email'));
    byId('code-to-hint', HTMLElement).hidden = !sms;
    to.type = sms ? 'tel' : 'email';
    to.autocomplete = sms ? 'tel' : 'email';
  };
  sendForm.addEventListener('change', showChannel);
  showChannel();

  onSubmit(sendForm, async () => {
    say(error, '');
    const destination = { channel: channel(), to: to.value.trim() };
    try {
      await api('POST', '/v1/user/code/send', { ...destination, purpose: 'login' });
    } catch (failure) {
      to.setAttribute('aria-invalid', String(failure instanceof ApiError && failure.code === 'invalid_request'));
      say(error, describeError(failure, SEND_WORDS));
      return;
    }
    to.removeAttribute('aria-invalid');
    sent = destination;
    say(byId('code-sent', HTMLElement), t('signin.code_sent', { to: destination.to }));
    sendForm.hidden = true;
    loginForm.hidden = false;
    code.value = '';
    code.focus();
  });

  loginForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const submit = loginForm.querySelector('button[type="submit"]');
    if (!(submit instanceof HTMLButtonElement) || sent === null) return;
    const destination = sent;
    void busy(submit, async () => {
      say(error, '');
      /** @type {unknown} */
      let answer;
      try {
        answer = await api('POST', '/v1/user/code/login', { ...destination, code: code.value.trim(), flag: 1, device: thisDevice() });
      } catch (failure) {
        say(error, describeError(failure, LOGIN_WORDS));
        code.select();
        return;
      }
      if (needsSecondStep(answer)) {
        askSecondStep(answer, onSignedIn);
        return;
      }
      onSignedIn();
    });
  });

  byId('code-restart', HTMLButtonElement).addEventListener('click', () => {
    say(error, '');
    loginForm.hidden = true;
    sendForm.hidden = false;
    to.focus();
  });
}
