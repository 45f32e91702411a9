// @ts-check
/**
 * The console's language (docs/design.md §5.1). The server already chose it for
 * the page it sent (the `latchkey_lang` cookie, else Accept-Language: zh* → zh-CN, otherwise
 * English) and wrote it in `<html lang>`; the scripts take the same one from there, so markup and
 * script words never disagree. The switch sets that cookie and reloads: a cookie rather than
 * localStorage because the server needs it for the page's first byte (no flash of the other
 * language, and no inline script, which the CSP forbids, to fix it up).
 */
import { MESSAGES as EN } from './i18n-en.js';
import { MESSAGES as ZH_CN } from './i18n-zh-CN.js';

/** @typedef {import('./i18n-en.js').MessageKey} MessageKey */

export const LANGUAGE_COOKIE = 'latchkey_lang';

/** @type {'en' | 'zh-CN'} */
export const language = document.documentElement.lang === 'zh-CN' ? 'zh-CN' : 'en';

const messages = language === 'zh-CN' ? ZH_CN : EN;

/**
 * The locale for dates and numbers: zh-CN, or the browser's own English (en-GB writes dates the
 * British way), or plain `en`.
 */
export const locale = language === 'zh-CN' ? 'zh-CN' : navigator.languages.find((tag) => /^en(-|$)/i.test(tag)) ?? 'en';

/**
 * @param {MessageKey} key
 * @param {Record<string, string | number>} [values] for `{name}` in the text
 * @returns {string}
 */
export function t(key, values = {}) {
  const text = messages[key] ?? EN[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

const plurals = new Intl.PluralRules(locale);

/**
 * A message with a count in it, from `<key>_one` / `<key>_other`.
 * @param {string} base
 * @param {number} count
 * @param {Record<string, string | number>} [values]
 */
export function tCount(base, count, values = {}) {
  const form = plurals.select(count) === 'one' ? 'one' : 'other';
  return t(/** @type {MessageKey} */ (`${base}_${form}`), { count, ...values });
}

/** Whether `key` is in the catalogue (for codes from the server: error codes, audit reasons). @param {string} key @returns {key is MessageKey} */
export function known(key) {
  return Object.hasOwn(messages, key);
}

/** The language switch: every page has a `#lang-switch` button naming the other language. */
export function wireLanguageSwitch() {
  const button = document.getElementById('lang-switch');
  if (!(button instanceof HTMLButtonElement)) return;
  button.addEventListener('click', () => {
    const chosen = t('lang.other_code');
    // A year; Lax like the session cookies; not HttpOnly (this script writes it); not a secret.
    const secure = location.protocol === 'https:' ? '; secure' : '';
    document.cookie = `${LANGUAGE_COOKIE}=${encodeURIComponent(chosen)}; path=/; max-age=31536000; samesite=lax${secure}`;
    location.reload();
  });
}
