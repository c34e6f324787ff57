// Export jobs on the orders page: the newest ones with their progress, and their files to download.
import { api, apiJson, paths } from './api.js';
import { clear, fmt, fmtBytes, fmtTime, h, newId, showError } from './dom.js';

const SHOWN = 10;

/** A card listing export jobs; `refresh(signal)` reads them again. */
export function exportsSection(errors) {
  const title = newId('exports');
  const list = h('ul', { class: 'orders exports', 'aria-label': 'Export jobs' });
  const empty = h('p', { class: 'empty', text: 'No export jobs. Start one with sensory export NAME --format webdataset, or POST /v1/datasets/{name}/exports.' });
  empty.hidden = true;
  const element = h('section', { class: 'card', 'aria-labelledby': title }, h('h2', { id: title, text: 'Export jobs' }), empty, list);
  const cards = new Map();

  function card(job) {
    let entry = cards.get(job.id);
    if (!entry) {
      const status = h('span', { class: 'badge' });
      const done = h('span', { class: 'delivered' });
      const bar = h('div', { class: 'order-bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-label': `Export ${job.id} written` }, done);
      const percent = h('span', { class: 'order-percent', 'data-field': 'percent' });
      const numbers = h('p', { class: 'order-numbers small' });
      const files = h('ul', { class: 'export-files small', 'aria-label': `Files of export ${job.id}` });
      const element = h(
        'li',
        { class: 'order', 'data-export-id': job.id },
        h('div', { class: 'order-head' }, h('a', { class: 'order-dataset', href: `#/datasets/${encodeURIComponent(job.dataset)}`, text: job.dataset }), h('code', { class: 'order-id', title: job.id, text: job.id }), status),
        h('div', { class: 'order-progress' }, bar, percent),
        numbers,
        files,
      );
      entry = { element, status, bar, done, percent, numbers, files, shownFiles: -1 };
      cards.set(job.id, entry);
    }
    const pct = Math.floor(job.progress * 100);
    entry.status.className = `badge status-${job.status}`;
    entry.status.textContent = job.status;
    entry.bar.setAttribute('aria-valuemax', String(job.samples.total));
    entry.bar.setAttribute('aria-valuenow', String(job.samples.done));
    entry.bar.setAttribute('aria-valuetext', `${fmt(job.samples.done)} of ${fmt(job.samples.total)} samples written (${pct}%)`);
    entry.done.style.width = `${pct}%`;
    entry.percent.textContent = `${pct}%`;
    const bytes = job.files.reduce((sum, file) => sum + file.bytes, 0);
    clear(entry.numbers).append(
      `${job.format} · revision ${fmt(job.revision)} · ${job.split}${job.categories ? ` · ${job.categories.join(', ')}` : ''} · ${fmt(job.files.length)} file(s), ${fmtBytes(bytes)} · `,
      h('time', { datetime: job.createdAt, text: fmtTime(job.createdAt) }),
    );
    if (job.error) entry.numbers.append(h('span', { class: 'order-error', text: ` · ${job.error}` }));
    if (entry.shownFiles !== job.files.length) {
      entry.shownFiles = job.files.length;
      clear(entry.files).append(...job.files.map((file) => h('li', {}, downloadButton(job, file), ` ${fmtBytes(file.bytes)}, ${fmt(file.samples)} samples`)));
    }
    return entry.element;
  }

  function downloadButton(job, file) {
    const button = h('button', { type: 'button', class: 'button small ghost', text: file.name, 'aria-label': `Download ${file.name}` });
    button.addEventListener('click', async () => {
      // The key goes in a header, so the file is fetched here and saved from memory (large exports: sensory export --job ID).
      button.disabled = true;
      try {
        const response = await api(file.url);
        const url = URL.createObjectURL(await response.blob());
        const link = h('a', { href: url, download: file.name });
        document.body.append(link);
        link.click();
        link.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60_000);
      } catch (error) {
        showError(errors, error, 'Download failed');
      } finally {
        button.disabled = false;
      }
    });
    return button;
  }

  async function refresh(signal) {
    const { exports } = await apiJson(paths.exports(), { signal });
    const shown = exports.slice(0, SHOWN).map(card);
    shown.forEach((item, i) => {
      if (list.children[i] !== item) list.insertBefore(item, list.children[i] ?? null);
    });
    while (list.children.length > shown.length) list.lastElementChild.remove();
    empty.hidden = shown.length > 0;
    for (const id of cards.keys()) if (!cards.get(id).element.isConnected) cards.delete(id);
  }

  return { element, refresh };
}
