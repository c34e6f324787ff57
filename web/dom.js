// Small DOM helpers: an element builder, formatting, a toast and a confirmation dialog.

/**
 * h('button', {class: 'primary', onclick: fn, 'aria-label': 'Close'}, 'text', child, …)
 * Attributes: `class`, `text`, `on<event>` handlers, booleans (true sets, false omits), others as attributes.
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), value);
    else if (name === 'text') element.textContent = value;
    else if (name === 'class') element.className = value;
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(element) {
  element.replaceChildren();
  return element;
}

const numbers = new Intl.NumberFormat('en');
export const fmt = (n) => numbers.format(n);

export function fmtBytes(n) {
  if (n < 1024) return `${fmt(n)} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function fmtTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

export function plural(n, one, many = `${one}s`) {
  return `${fmt(n)} ${n === 1 ? one : many}`;
}

let uid = 0;
export const newId = (prefix) => `${prefix}-${++uid}`;

/** An error message box; the text is the server's message. */
export function errorBox(error, prefix) {
  const message = error instanceof Error ? error.message : String(error);
  return h('div', { class: 'alert error', role: 'alert' }, prefix ? h('strong', { text: `${prefix}: ` }) : null, message);
}

/** Shows `error` in `slot` (role=alert, so screen readers hear it), or clears the slot. */
export function showError(slot, error, prefix) {
  clear(slot);
  if (error) slot.append(errorBox(error, prefix));
}

/** A short message in the polite live region at the bottom of the page. */
export function toast(message, kind = 'ok') {
  const region = document.getElementById('toasts');
  if (!region) return;
  const item = h('div', { class: `toast ${kind}` }, message);
  region.append(item);
  while (region.children.length > 3) region.firstElementChild.remove();
  setTimeout(() => item.remove(), 4000);
}

/** A modal yes/no question; resolves true when confirmed. Escape or Cancel resolve false. */
export function confirmDialog({ title, message, confirm = 'Confirm', danger = false }) {
  return new Promise((resolve) => {
    const titleId = newId('confirm-title');
    const cancelButton = h('button', { type: 'button', class: 'button', value: 'cancel', text: 'Cancel' });
    const okButton = h('button', { type: 'button', class: `button ${danger ? 'danger' : 'primary'}`, value: 'ok', text: confirm });
    const dialog = h(
      'dialog',
      { class: 'confirm', role: 'alertdialog', 'aria-labelledby': titleId, 'aria-modal': 'true' },
      h('h2', { id: titleId, text: title }),
      h('p', { text: message }),
      h('div', { class: 'actions' }, cancelButton, okButton),
    );
    const done = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    cancelButton.addEventListener('click', () => done(false));
    okButton.addEventListener('click', () => done(true));
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      done(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancelButton.focus();
  });
}
