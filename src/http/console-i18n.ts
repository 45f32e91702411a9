/**
 * The console's languages on the server side (docs/design.md §5.1): which one a
 * request gets, and the pages rendered in each. The pages under src/console are templates whose
 * every word is a `{{key}}` of the catalogues in src/console/assets/i18n-*.js (the same modules
 * the browser imports), so markup and scripts share one catalogue per language.
 */
import { readFileSync } from 'node:fs';

export const CONSOLE_LANGUAGES = ['en', 'zh-CN'] as const;
export type ConsoleLanguage = (typeof CONSOLE_LANGUAGES)[number];

/** The switch's choice, set by the console's script (src/console/assets/i18n.js). */
export const LANGUAGE_COOKIE = 'latchkey_lang';

type Catalogue = Readonly<Record<string, string>>;

async function catalogue(file: string): Promise<Catalogue> {
  const module = (await import(new URL(`../console/assets/${file}`, import.meta.url).href)) as { MESSAGES: Catalogue };
  return module.MESSAGES;
}

export const CATALOGUES: Readonly<Record<ConsoleLanguage, Catalogue>> = {
  en: await catalogue('i18n-en.js'),
  'zh-CN': await catalogue('i18n-zh-CN.js'),
};

/**
 * zh, zh-CN, zh-Hans, zh-SG… → zh-CN (zh-TW and zh-Hant too: Simplified Chinese reads better to
 * them than English does); en* and `*` → English; other tags are passed over for the next one
 * by q-value; nothing usable → English.
 */
export function languageOf(acceptLanguage: string | undefined): ConsoleLanguage {
  if (acceptLanguage === undefined) return 'en';
  const ranges = acceptLanguage.split(',').slice(0, 32).map((part, index) => {
    const [tag = '', ...params] = part.trim().split(';');
    const q = params.map((p) => /^\s*q\s*=\s*([0-9.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    const weight = q === undefined ? 1 : Number(q);
    return { tag: tag.trim().toLowerCase(), weight: Number.isFinite(weight) ? weight : 0, index };
  }).filter((range) => range.weight > 0 && range.tag !== '');
  ranges.sort((a, b) => b.weight - a.weight || a.index - b.index);
  for (const { tag } of ranges) {
    if (tag === 'zh' || tag.startsWith('zh-')) return 'zh-CN';
    if (tag === 'en' || tag.startsWith('en-') || tag === '*') return 'en';
  }
  return 'en';
}

/** The cookie's choice when it names a language of the console, else the browser's. */
export function chooseLanguage(cookieValue: string | undefined, acceptLanguage: string | undefined): ConsoleLanguage {
  const chosen = CONSOLE_LANGUAGES.find((language) => language === cookieValue);
  return chosen ?? languageOf(acceptLanguage);
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * A page template in one language: `{{key}}` → the catalogue's text, HTML-escaped; `{{@lang}}` →
 * the language tag. A key missing from the catalogue throws (at start-up, where pages are rendered).
 */
export function renderPage(template: string, language: ConsoleLanguage): string {
  const words = CATALOGUES[language];
  return template.replace(/\{\{(@?[\w.-]+)\}\}/g, (_whole, key: string) => {
    if (key === '@lang') return language;
    const text = words[key];
    if (text === undefined) throw new Error(`console page: no "${key}" in the ${language} catalogue`);
    return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
  });
}

/** A template file rendered in every language. */
export function renderPageFile(path: string): Record<ConsoleLanguage, string> {
  const template = readFileSync(path, 'utf8');
  return { en: renderPage(template, 'en'), 'zh-CN': renderPage(template, 'zh-CN') };
}
