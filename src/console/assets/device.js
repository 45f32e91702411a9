// @ts-check
/**
 * How this browser introduces itself at login (`device` in docs/api.md §1): a stable device id, so the
 * account's device list shows one entry per browser rather than one per login, and a name a
 * person recognises. The id is not a secret (it identifies, it never authenticates), so
 * localStorage is the right place for it.
 */
import { t } from './i18n.js';
import { browserParts, browserWords } from './messages.js';

const DEVICE_ID_KEY = 'latchkey.device_id';

function randomId() {
  // getRandomValues, not randomUUID: the console may be served over plain http on a closed
  // network, where randomUUID (secure contexts only) does not exist.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `web-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

function deviceId() {
  try {
    const known = localStorage.getItem(DEVICE_ID_KEY);
    if (known !== null && /^web-[0-9a-f]{32}$/.test(known)) return known;
    const fresh = randomId();
    localStorage.setItem(DEVICE_ID_KEY, fresh);
    return fresh;
  } catch {
    return randomId();
  }
}

/** @returns {{device_id: string, device_name: string, device_model: string}} */
export function thisDevice() {
  const userAgent = navigator.userAgent;
  // In the words of the page it signs in from ("Chrome on Linux", "Linux 上的 Chrome").
  const name = browserWords(userAgent) || t('flag.1');
  const version = /(?:Edg|OPR|Firefox|Chrome|Chromium|Version)\/(\d+)/.exec(userAgent)?.[1];
  const browser = browserParts(userAgent).browser || name;
  return {
    device_id: deviceId(),
    device_name: name.slice(0, 128),
    device_model: (version === undefined ? browser : `${browser} ${version}`).slice(0, 128),
  };
}
