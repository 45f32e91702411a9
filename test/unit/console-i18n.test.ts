/**
 * The console's two catalogues (src/console/assets/i18n-*.js) and the rule that no page or
 * script holds a word of its own (docs/design.md §5.1).
 *
 * The literal check is a heuristic over the TypeScript compiler's view of each console script:
 * every string and template literal (template holes read as "X") outside the catalogues and
 * outside `new Error(...)` (developer messages) is user-visible English when it has a capitalised
 * word followed by another word ("Sign out", "Page X"), ends a sentence (letter then . ! ? …), holds
 * a typographic quote or dash, or is one capitalised word ("Ban") that is not a product or key
 * name. Class names, selectors, paths, storage keys and codes are lower-case, single tokens or
 * full of punctuation, so they pass. In the page templates nothing with a letter may be left
 * between tags, or in a visible attribute (title, alt, placeholder, aria-label), once the
 * `{{key}}` placeholders are taken out.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { CATALOGUES, chooseLanguage, languageOf, renderPage } from '../../src/http/console-i18n.ts';

// The modules the browser imports, as the server loads them.
const EN = CATALOGUES.en;
const ZH = CATALOGUES['zh-CN'];

const CONSOLE = fileURLToPath(new URL('../../src/console/', import.meta.url));
const ASSETS = join(CONSOLE, 'assets');
const CATALOGUE_FILE = /^i18n-.+\.js$/;

/** Names that are the same in every language, and keyboard key names. */
const NOT_WORDS = new Set(['Edge', 'Opera', 'Firefox', 'Chrome', 'Safari', 'Android', 'Windows', 'Linux', 'Home', 'End']);

export function looksLikeWords(text: string): boolean {
  if (/\p{Lu}\p{Ll}+[ ’'][\p{L}\d]/u.test(text)) return true;
  if (/\p{L}[.!?…]$/u.test(text.trim()) && /\s/.test(text.trim())) return true;
  if (/[’“”—…]/.test(text)) return true;
  return /^\p{Lu}\p{Ll}+$/u.test(text.trim()) && !NOT_WORDS.has(text.trim());
}

/** The user-visible-looking literals of one script, with their line numbers. */
export function literalWords(source: string, fileName = 'x.js'): string[] {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) return;
    if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'Error') return;
    let text: string | undefined;
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) text = node.text;
    else if (ts.isTemplateExpression(node)) text = [node.head.text, ...node.templateSpans.map((span) => span.literal.text)].join('X');
    if (text !== undefined && looksLikeWords(text)) {
      const { line } = file.getLineAndCharacterOfPosition(node.getStart());
      found.push(`${fileName}:${line + 1}: ${JSON.stringify(text)}`);
    }
    if (!ts.isTemplateExpression(node)) ts.forEachChild(node, visit);
    else for (const span of node.templateSpans) visit(span.expression);
  };
  visit(file);
  return found;
}

/** Words left in a page template once its `{{key}}`s are out. */
export function templateWords(html: string, fileName = 'x.html'): string[] {
  const found: string[] = [];
  const bare = html.replace(/<!--[\s\S]*?-->/g, '').replace(/\{\{[@\w.-]+\}\}/g, '');
  for (const match of bare.matchAll(/>([^<]+)</g)) {
    const text = match[1]?.trim() ?? '';
    if (/\p{L}/u.test(text)) found.push(`${fileName}: text ${JSON.stringify(text)}`);
  }
  for (const match of bare.matchAll(/\s(title|alt|placeholder|aria-label|aria-description)="([^"]*)"/g)) {
    if (/\p{L}/u.test(match[2] ?? '')) found.push(`${fileName}: ${match[1]}=${JSON.stringify(match[2])}`);
  }
  return found;
}

const scripts = readdirSync(ASSETS).filter((name) => name.endsWith('.js') && !CATALOGUE_FILE.test(name));
const pages = readdirSync(CONSOLE).filter((name) => name.endsWith('.html'));

describe('console catalogues', () => {
  it('English and Simplified Chinese have exactly the same keys', () => {
    const en = Object.keys(EN).sort();
    const zh = Object.keys(ZH).sort();
    assert.deepEqual(en.filter((key) => !zh.includes(key)), [], 'keys only in i18n-en.js');
    assert.deepEqual(zh.filter((key) => !en.includes(key)), [], 'keys only in i18n-zh-CN.js');
  });

  it('fills in the same {placeholders} in both languages, and no text is empty', () => {
    const holes = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    const en = EN;
    const zh = ZH;
    const differ = Object.keys(en).filter((key) => JSON.stringify(holes(en[key] ?? '')) !== JSON.stringify(holes(zh[key] ?? '')));
    assert.deepEqual(differ, []);
    assert.deepEqual(Object.keys(en).filter((key) => en[key] === '' || zh[key] === ''), []);
  });

  it('every key a page or script asks for is in the catalogue', () => {
    const missing: string[] = [];
    for (const name of pages) {
      for (const [, key] of readFileSync(join(CONSOLE, name), 'utf8').matchAll(/\{\{([\w.-]+)\}\}/g)) if (!(key! in EN)) missing.push(`${name}: ${key}`);
    }
    for (const name of scripts) {
      for (const [, key] of readFileSync(join(ASSETS, name), 'utf8').matchAll(/\bt\(\s*'([^']+)'/g)) if (!(key! in EN)) missing.push(`${name}: ${key}`);
    }
    assert.deepEqual(missing, []);
  });
});

describe('console: no words outside the catalogues', () => {
  it('the heuristic catches words and passes code', () => {
    for (const words of ['Sign out', 'Refresh', 'No users match “X”.', 'Signed out X.', 'Page X of X', 'that is not right.', 'Approved — signing you in…']) {
      assert.ok(looksLikeWords(words), words);
    }
    for (const code of ['small danger', 'item-meta', '/v1/user/login', 'latchkey.ended', 'input[name="channel"]:checked', 'GET', 'Chrome', 'Home', 'aria-busy', 'M8 2.5h8a1.5 1.5', 'X=X; path=/; samesite=laxX']) {
      assert.ok(!looksLikeWords(code), code);
    }
    assert.deepEqual(literalWords("h('button', {}, 'Cancel'); throw new Error('bad QR image'); t('dialog.cancel');").length, 1);
    assert.deepEqual(templateWords('<p class="x">{{a.b}}</p><button title="Close">{{c}}</button><span>Hi</span>').length, 2);
  });

  it('no console script holds a user-visible literal', () => {
    const found = scripts.flatMap((name) => literalWords(readFileSync(join(ASSETS, name), 'utf8'), name));
    assert.deepEqual(found, []);
  });

  it('no console page holds a word outside {{key}}', () => {
    assert.ok(pages.length >= 3);
    const found = pages.flatMap((name) => templateWords(readFileSync(join(CONSOLE, name), 'utf8'), name));
    assert.deepEqual(found, []);
  });
});

describe('console language choice', () => {
  it('zh, zh-CN, zh-Hans… → zh-CN; English and anything else → en', () => {
    for (const header of ['zh', 'zh-CN', 'zh-Hans', 'zh-Hans-CN', 'zh-CN,zh;q=0.9,en;q=0.8', 'fr-FR, zh-TW;q=0.5', 'ZH-cn']) {
      assert.equal(languageOf(header), 'zh-CN', header);
    }
    for (const header of [undefined, '', 'en-US', 'en-GB,zh;q=0.9', 'fr', '*', 'zh;q=0, en', 'de, en;q=0.9, zh;q=0.8', 'zhx']) {
      assert.equal(languageOf(header), 'en', String(header));
    }
    assert.equal(languageOf('en;q=0.5, zh;q=0.9'), 'zh-CN', 'by q-value, not order');
  });

  it('the switch cookie wins when it names a console language', () => {
    assert.equal(chooseLanguage('en', 'zh-CN'), 'en');
    assert.equal(chooseLanguage('zh-CN', 'en'), 'zh-CN');
    assert.equal(chooseLanguage('fr', 'zh'), 'zh-CN');
    assert.equal(chooseLanguage(undefined, 'en'), 'en');
  });

  it('renders a template in each language, escaped, and refuses an unknown key', () => {
    assert.equal(renderPage('<html lang="{{@lang}}"><h1>{{signin.heading}}</h1>', 'zh-CN'), '<html lang="zh-CN"><h1>登录</h1>');
    assert.equal(renderPage('<p>{{admin.no_users_match}}</p>', 'en'), '<p>No users match “{query}”.</p>');
    assert.throws(() => renderPage('{{no.such.key}}', 'en'), /no\.such\.key/);
  });
});
