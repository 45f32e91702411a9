// @ts-check
/**
 * QR sign-in, the browser's side (README "QR login"): ask for a login request, show its QR, and
 * long-poll its status until the phone approves (then exchange the auth code: the cookie is set),
 * declines (say so), or the code lapses (show a fresh one). The poll secret stays in this closure;
 * it is never in the QR and never in the page.
 */
import { api, ApiError } from './api.js';
import { thisDevice } from './device.js';
import { byId, say } from './dom.js';
import { t } from './i18n.js';
import { describeError } from './messages.js';
import { askSecondStep, needsSecondStep } from './signin-two-step.js';

/** @typedef {'waitScan' | 'scanned' | 'authed' | 'rejected' | 'expired'} QrStatus */
/** @typedef {{uuid: string, poll_secret: string, qrcode: {svg: string, text: string}, expires_at: number}} LoginRequest */

/** @type {Record<string, string>} */
const STATUS_WORDS = {
  loading: t('signin.qr_loading'),
  waitScan: t('signin.qr_wait_scan'),
  scanned: t('signin.qr_scanned'),
  authed: t('signin.qr_authed'),
  rejected: t('signin.qr_rejected'),
};

const RETRY_DELAYS_MS = [1000, 2000, 5000, 10000];

/** @param {number} ms @param {AbortSignal} signal */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

/**
 * The QR is our own server's SVG, parsed as SVG (not HTML) and adopted: scripts in parsed
 * documents never run, and the CSP would refuse them anyway.
 * @param {string} svgText
 */
function showQr(svgText) {
  const image = byId('qr-image', HTMLElement);
  const parsed = new DOMParser().parseFromString(svgText, 'image/svg+xml');
  const svg = parsed.documentElement;
  if (svg.nodeName !== 'svg' || parsed.querySelector('parsererror') !== null) throw new Error('bad QR image');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  image.replaceChildren(document.importNode(svg, true));
  image.classList.remove('dimmed');
}

/** @param {string} state @param {string} [words] */
function showStatus(state, words) {
  const status = byId('qr-status', HTMLElement);
  status.dataset.state = state;
  say(status, words ?? STATUS_WORDS[state] ?? '');
  byId('qr-image', HTMLElement).classList.toggle('dimmed', state !== 'waitScan');
  byId('qr-help', HTMLElement).hidden = state !== 'waitScan';
}

/** @param {AbortSignal} signal @returns {Promise<LoginRequest>} */
async function newLoginRequest(signal) {
  const query = new URLSearchParams({ flag: '1', ...thisDevice() });
  /** @type {LoginRequest} */
  const request = await api('GET', `/v1/user/loginuuid?${query}`, undefined, { signal });
  showQr(request.qrcode.svg);
  byId('qr-image', HTMLElement).dataset.uuid = request.uuid;
  showStatus('waitScan');
  return request;
}

/**
 * Follows one request to its end. Resolves 'signed-in', 'rejected' or 'expired', or the challenge of
 * a second step (an account with two-step verification approved by a phone that showed none).
 * @param {LoginRequest} request
 * @param {AbortSignal} signal
 */
async function follow(request, signal) {
  /** @type {QrStatus} */
  let last = 'waitScan';
  let failures = 0;
  for (;;) {
    const query = new URLSearchParams({ uuid: request.uuid, poll_secret: request.poll_secret, last_status: last });
    /** @type {{status: QrStatus, auth_code?: string}} */
    let answer;
    try {
      answer = await api('GET', `/v1/user/loginstatus?${query}`, undefined, { signal });
      failures = 0;
    } catch (error) {
      // 404: the request is gone (lapsed and swept): as good as expired.
      if (error instanceof ApiError && error.code === 'not_found') return 'expired';
      if (!(error instanceof ApiError) || error.status === 0 || error.status >= 500) {
        showStatus('error', describeError(error));
        await sleep(RETRY_DELAYS_MS[Math.min(failures++, RETRY_DELAYS_MS.length - 1)] ?? 10000, signal);
        showStatus(last);
        continue;
      }
      throw error;
    }
    if (answer.status === 'authed' && answer.auth_code !== undefined) {
      showStatus('authed', t('signin.qr_approved'));
      const login = await api('POST', `/v1/user/login_authcode/${encodeURIComponent(answer.auth_code)}`, {
        uuid: request.uuid, poll_secret: request.poll_secret,
      }, { signal });
      if (needsSecondStep(login)) return login;
      showStatus('authed');
      return 'signed-in';
    }
    if (answer.status === 'rejected') return 'rejected';
    if (answer.status === 'expired') return 'expired';
    if (answer.status !== last) showStatus(answer.status);
    last = answer.status;
  }
}

/**
 * @param {() => void} onSignedIn
 * @param {(message: string) => void} onError
 */
export function qrSignIn(onSignedIn, onError) {
  /** @type {AbortController | null} */
  let running = null;
  const refresh = byId('qr-refresh', HTMLButtonElement);

  /** @param {AbortSignal} signal */
  async function run(signal) {
    refresh.hidden = true;
    showStatus('loading');
    for (;;) {
      const request = await newLoginRequest(signal);
      const outcome = await follow(request, signal);
      if (outcome === 'signed-in') return onSignedIn();
      if (typeof outcome === 'object') return askSecondStep(outcome, onSignedIn);
      if (outcome === 'rejected') {
        showStatus('rejected');
        refresh.hidden = false;
        return;
      }
      // Expired: a fresh code, without asking.
    }
  }

  function start() {
    stop();
    const controller = new AbortController();
    running = controller;
    run(controller.signal).catch((/** @type {unknown} */ error) => {
      if (controller.signal.aborted) return;
      showStatus('error', t('signin.qr_unusable'));
      refresh.hidden = false;
      onError(describeError(error, { expired: t('signin.qr_too_late') }));
    });
  }

  function stop() {
    running?.abort();
    running = null;
  }

  refresh.addEventListener('click', () => {
    onError('');
    start();
  });
  return { start, stop };
}
