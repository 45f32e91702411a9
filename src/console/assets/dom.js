// @ts-check
/**
 * Small DOM helpers. Everything is built with createElement and textContent, never innerHTML:
 * device names, user agents and usernames are chosen by whoever signs in, so they are text.
 */
import { t } from './i18n.js';

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string | boolean | undefined>} [attributes]
 * @param {...(Node | string | null | undefined | false)} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (name === 'class') element.className = String(value);
    else element.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child);
  }
  return element;
}

/**
 * @template {typeof HTMLElement} T
 * @param {string} id
 * @param {T} type
 * @returns {InstanceType<T>}
 */
export function byId(id, type) {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`#${id} is missing or not a ${type.name}`);
  return /** @type {InstanceType<T>} */ (element);
}

/** @param {HTMLElement} element @param {string} text */
export function say(element, text) {
  element.textContent = text;
}

/**
 * Runs an action with its button disabled, so a double click never sends it twice.
 * @param {HTMLButtonElement} button
 * @param {() => Promise<void>} action
 */
export async function busy(button, action) {
  if (button.disabled) return;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    await action();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

/**
 * Tabs per the WAI-ARIA tabs pattern: one tab in the Tab order, arrow keys move between tabs.
 * @param {HTMLElement} tablist
 * @param {(tab: HTMLButtonElement) => void} onSelect
 */
export function setupTabs(tablist, onSelect) {
  const tabs = () => [...tablist.querySelectorAll('[role="tab"]')].filter(
    /** @returns {tab is HTMLButtonElement} */ (tab) => tab instanceof HTMLButtonElement && !tab.hidden,
  );
  /** @param {HTMLButtonElement} chosen @param {boolean} focus */
  const select = (chosen, focus) => {
    for (const tab of tabs()) {
      const selected = tab === chosen;
      tab.setAttribute('aria-selected', String(selected));
      tab.tabIndex = selected ? 0 : -1;
      const panel = document.getElementById(tab.getAttribute('aria-controls') ?? '');
      if (panel !== null) panel.hidden = !selected;
    }
    if (focus) chosen.focus();
    onSelect(chosen);
  };
  tablist.addEventListener('click', (event) => {
    const tab = event.target instanceof Element ? event.target.closest('[role="tab"]') : null;
    if (tab instanceof HTMLButtonElement) select(tab, false);
  });
  tablist.addEventListener('keydown', (event) => {
    const all = tabs();
    const at = all.findIndex((tab) => tab === document.activeElement);
    if (at < 0) return;
    const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
    let next = step === undefined ? undefined : all[(at + step + all.length) % all.length];
    if (event.key === 'Home') next = all[0];
    if (event.key === 'End') next = all[all.length - 1];
    if (next === undefined) return;
    event.preventDefault();
    select(next, true);
  });
  const first = tabs().find((tab) => tab.getAttribute('aria-selected') === 'true') ?? tabs()[0];
  if (first !== undefined) select(first, false);
  return { select: (/** @type {HTMLButtonElement} */ tab) => select(tab, false) };
}

/**
 * Runs `action` when the form is submitted, with its submit button busy meanwhile (busy()).
 * @param {HTMLFormElement} form
 * @param {() => Promise<void>} action
 */
export function onSubmit(form, action) {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const submit = form.querySelector('button[type="submit"]');
    if (!(submit instanceof HTMLButtonElement)) return;
    void busy(submit, action);
  });
}

/**
 * An accessible yes/no question in a <dialog> (focus is trapped, Escape cancels), made on first use
 * so that every page asks the same way.
 * @param {{title: string, text: string, action: string, danger?: boolean}} question
 * @returns {Promise<boolean>}
 */
export function confirmAction(question) {
  const dialog = confirmDialog();
  say(byId('confirm-title', HTMLElement), question.title);
  say(byId('confirm-text', HTMLElement), question.text);
  const yes = byId('confirm-yes', HTMLButtonElement);
  say(yes, question.action);
  yes.className = question.danger === true ? 'danger solid' : 'primary';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'yes'), { once: true });
    dialog.returnValue = '';
    dialog.showModal();
  });
}

/** @returns {HTMLDialogElement} */
function confirmDialog() {
  const existing = document.getElementById('confirm');
  if (existing instanceof HTMLDialogElement) return existing;
  const dialog = /** @type {HTMLDialogElement} */ (h('dialog', { id: 'confirm', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-text' },
    h('form', { method: 'dialog' },
      h('h2', { id: 'confirm-title' }),
      h('p', { id: 'confirm-text', class: 'muted' }),
      h('div', { class: 'dialog-actions' },
        h('button', { value: 'no', type: 'submit' }, t('dialog.cancel')),
        h('button', { value: 'yes', type: 'submit', id: 'confirm-yes' })))));
  document.body.append(dialog);
  return dialog;
}

/** @param {string} text */
export function initials(text) {
  const letters = [...text.trim()].filter((c) => /\p{L}|\p{N}/u.test(c));
  return (letters[0] ?? '?').toUpperCase();
}
