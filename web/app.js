// Sensory's web page: a hash router over three views (datasets, a dataset, orders) and the key form.
import { apiJson, paths, session } from './api.js';
import { datasetListView, datasetView } from './datasets.js';
import { clear, h, newId, showError } from './dom.js';
import { ordersView } from './orders.js';

const main = document.getElementById('main');
let cleanup = () => {};
/** A message to show on the key form (why the key was asked for again). */
let keyNotice = null;

function route() {
  const path = location.hash.replace(/^#/, '') || '/';
  const dataset = /^\/datasets\/([^/]+)\/?$/.exec(path);
  if (dataset) return { view: 'dataset', name: decodeURIComponent(dataset[1]) };
  if (path === '/orders') return { view: 'orders' };
  return { view: 'datasets' };
}

/** Learns the key's roles (GET /v1/me) before the first view, so each view shows only what the key may do. */
async function loadRoles(key) {
  const me = await apiJson(paths.me(), { key });
  session.roles = me.roles;
  return me;
}

function render() {
  cleanup();
  cleanup = () => {};
  clear(main);
  const signedIn = Boolean(session.key);
  if (signedIn && !session.roles) {
    main.append(h('p', { class: 'muted', text: 'Checking the key…' }));
    loadRoles(session.key).then(render, (error) => {
      // A refused key is handled by the unauthorized event; anything else shows here.
      if (error.status !== 401) showError(clear(main), error, 'Could not check the key');
    });
    return;
  }
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('session').hidden = !signedIn;
  if (!signedIn) {
    document.title = 'Sign in · Sensory';
    keyView(main);
    return;
  }
  const key = session.key;
  document.getElementById('key-hint').textContent = `Key …${key.slice(-4)} · ${session.roles.join(', ')}`;
  document.body.dataset.roles = session.roles.join(' ');
  const current = route();
  for (const link of document.querySelectorAll('[data-nav]')) {
    const active = link.dataset.nav === (current.view === 'orders' ? 'orders' : 'datasets');
    if (active) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (current.view === 'dataset') {
    document.title = `${current.name} · Sensory`;
    cleanup = datasetView(main, current.name);
  } else if (current.view === 'orders') {
    document.title = 'Orders · Sensory';
    cleanup = ordersView(main);
  } else {
    document.title = 'Datasets · Sensory';
    cleanup = datasetListView(main);
  }
}

function keyView(root) {
  const inputId = newId('key');
  const helpId = newId('key-help');
  const errors = h('div', { class: 'error-slot' });
  const input = h('input', {
    id: inputId,
    name: 'key',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'aria-describedby': helpId,
  });
  const submit = h('button', { type: 'submit', class: 'button primary', text: 'Continue' });
  const form = h(
    'form',
    { class: 'stack', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: inputId, text: 'API key' }), input),
    h('p', { id: helpId, class: 'muted small', text: 'Kept in this tab for the browser session only, and sent with each request as API-ACCESS-KEY.' }),
    errors,
    h('div', { class: 'actions' }, submit),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const candidate = input.value.trim();
    if (!candidate) {
      showError(errors, 'Enter an API key.');
      input.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Checking…';
    try {
      await loadRoles(candidate);
      accept(candidate);
    } catch (error) {
      // /v1/me answers any known key, so a refusal here is a wrong key (401) or the service away.
      showError(errors, error);
      input.setAttribute('aria-invalid', 'true');
      input.select();
      input.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = 'Continue';
    }
  });
  const notice = keyNotice;
  keyNotice = null;
  root.append(
    h(
      'section',
      { class: 'card narrow', 'aria-labelledby': 'key-title' },
      h('h1', { id: 'key-title', tabindex: '-1', text: 'Enter your API key' }),
      h('p', { class: 'muted', text: 'Sensory stores labeled training images. This page uses the same API as every client, with your key.' }),
      notice ? h('div', { class: 'alert warn', role: 'alert' }, notice) : null,
      form,
    ),
  );
  input.focus();
}

function accept(key) {
  session.key = key;
  render();
  focusHeading();
}

function focusHeading() {
  const heading = main.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
}

document.getElementById('forget-key').addEventListener('click', () => {
  session.forget();
  render();
});

window.addEventListener('sensory:unauthorized', (event) => {
  session.forget();
  keyNotice = `The key was refused: ${event.detail.message}`;
  render();
});

let shownHash = location.hash;
window.addEventListener('hashchange', () => {
  // Leaving a dataset mid-upload cancels the upload: ask first.
  if (cleanup.busy?.() && !window.confirm('An upload is running. Leave this page and cancel it?')) {
    history.replaceState(null, '', shownHash || '#/');
    return;
  }
  shownHash = location.hash;
  render();
  focusHeading();
});

render();
