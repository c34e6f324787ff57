// Uploads from the page: files and folder trees (a file's folder is its category), sent as tar
// bodies to the bulk endpoint by a queue with a few requests in flight, retries, cancel, a guard
// against leaving the page mid-upload, and one compact summary instead of a row per file.
import { api, paths } from './api.js';
import { clear, fmt, fmtBytes, h, newId, plural, showError, toast } from './dom.js';
import { tarBlob } from './tar.js';

/** Files per request and bytes per request: one request commits many files in the server's groups. */
const BATCH_FILES = 500;
const BATCH_BYTES = 24 * 1024 * 1024;
const CONCURRENCY = 3;
const RETRIES = 3;
/** Rejected files listed by name (the count covers all of them). */
const LISTED_REJECTS = 100;
/** Files a file manager adds that are never images. */
const NOISE = /^(\..*|Thumbs\.db|desktop\.ini)$/i;

/** Every file under a dropped folder entry, with the name of the folder that holds it. */
async function walk(entry, found) {
  if (entry.isFile) {
    if (NOISE.test(entry.name)) {
      found.skipped++;
      return;
    }
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    const parts = entry.fullPath.split('/').filter(Boolean);
    found.items.push({ file, name: file.name, folder: parts.length >= 2 ? parts[parts.length - 2] : null });
    return;
  }
  if (!entry.isDirectory) return;
  const reader = entry.createReader();
  for (;;) {
    // readEntries hands out a directory in slices (100 at a time in Chromium) until an empty one.
    const slice = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (slice.length === 0) break;
    for (const child of slice) await walk(child, found);
  }
}

/** What a drop holds: entries must be taken from the DataTransfer before the first await. */
export async function filesOfDrop(dataTransfer) {
  const found = { items: [], skipped: 0 };
  const entries = [...(dataTransfer.items ?? [])].filter((item) => item.kind === 'file').map((item) => item.webkitGetAsEntry?.());
  if (entries.length > 0 && entries.every(Boolean)) {
    for (const entry of entries) await walk(entry, found);
    return found;
  }
  for (const file of dataTransfer.files ?? []) found.items.push({ file, name: file.name, folder: null });
  return found;
}

/** What a file input holds: with webkitdirectory, each file's relative path names its folder. */
export function filesOfInput(input) {
  const found = { items: [], skipped: 0 };
  for (const file of input.files) {
    if (NOISE.test(file.name)) {
      found.skipped++;
      continue;
    }
    const parts = (file.webkitRelativePath || '').split('/').filter(Boolean);
    found.items.push({ file, name: file.name, folder: parts.length >= 2 ? parts[parts.length - 2] : null });
  }
  return found;
}

function batches(items) {
  const out = [];
  let current = [];
  let bytes = 0;
  for (const item of items) {
    if (current.length > 0 && (current.length >= BATCH_FILES || bytes + item.file.size > BATCH_BYTES)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += item.file.size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

const retryable = (error) => error.status === 0 || error.status === 408 || error.status === 429 || error.status >= 500;
const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new DOMException('cancelled', 'AbortError'));
    }, { once: true });
  });

/**
 * The upload card of dataset `name`. `onStored()` runs after an upload that stored something.
 * Returns {element, busy(), destroy()}.
 */
export function uploadCard({ name, datalistId, field, section, onStored }) {
  const category = h('input', { name: 'category', list: datalistId, autocomplete: 'off', spellcheck: 'false' });
  const filesId = newId('files');
  const folderId = newId('folder');
  const fileInput = h('input', { id: filesId, type: 'file', multiple: true, accept: 'image/*', class: 'visually-hidden' });
  const folderInput = h('input', { id: folderId, type: 'file', multiple: true, webkitdirectory: true, class: 'visually-hidden' });
  const chosen = h('p', { class: 'muted small chosen', 'aria-live': 'polite', text: 'Nothing chosen.' });
  const dropzone = h(
    'div',
    { class: 'dropzone' },
    h('p', { class: 'drop-title', text: 'Drop images or folders here' }),
    h('p', { class: 'muted small', text: 'A folder tree: each sub-folder is a category.' }),
    fileInput,
    folderInput,
    h('div', { class: 'actions center' }, h('label', { for: filesId, class: 'button' }, 'Choose images…'), h('label', { for: folderId, class: 'button' }, 'Choose a folder…')),
    chosen,
  );
  const progress = h('progress', { max: '1', value: '0', 'aria-label': 'Upload progress' });
  const progressText = h('span', { class: 'small muted progress-text' });
  const progressRow = h('div', { class: 'progress-row', hidden: true }, progress, progressText);
  const summary = h('p', { class: 'upload-summary', 'aria-live': 'polite' });
  const rejectList = h('ul', { class: 'rejects' });
  const rejectTitle = h('summary', {});
  const rejects = h('details', { class: 'rejects-box', hidden: true }, rejectTitle, rejectList);
  const errors = h('div', { class: 'error-slot' });
  const submit = h('button', { type: 'submit', class: 'button primary', text: 'Upload' });
  const reset = h('button', { type: 'button', class: 'button ghost', text: 'Clear' });
  const cancel = h('button', { type: 'button', class: 'button danger-ghost', text: 'Cancel upload', hidden: true });
  let chosenItems = [];
  let running = null;

  function choose(found) {
    if (running) return;
    chosenItems = found.items;
    clear(rejectList);
    rejects.hidden = true;
    progressRow.hidden = true;
    summary.textContent = '';
    if (chosenItems.length === 0) {
      chosen.textContent = found.skipped ? `Nothing to upload (${plural(found.skipped, 'hidden file')} skipped).` : 'Nothing chosen.';
      return;
    }
    const folders = new Map();
    let loose = 0;
    for (const item of chosenItems) {
      if (item.folder === null) loose++;
      else folders.set(item.folder, (folders.get(item.folder) ?? 0) + 1);
    }
    const bytes = chosenItems.reduce((sum, item) => sum + item.file.size, 0);
    const named = [...folders].sort((a, b) => a[0].localeCompare(b[0]));
    const shown = named.slice(0, 6).map(([folder, count]) => `${folder} ${fmt(count)}`).join(', ');
    const parts = [`${plural(chosenItems.length, 'file')} (${fmtBytes(bytes)})`];
    if (named.length > 0) parts.push(`${plural(named.length, 'category', 'categories')} from folders: ${shown}${named.length > 6 ? ', …' : ''}`);
    if (loose > 0) parts.push(`${plural(loose, 'loose file')} take the category above`);
    if (found.skipped) parts.push(`${plural(found.skipped, 'hidden file')} skipped`);
    chosen.textContent = `${parts.join('; ')}.`;
  }

  fileInput.addEventListener('change', () => choose(filesOfInput(fileInput)));
  folderInput.addEventListener('change', () => choose(filesOfInput(folderInput)));
  for (const type of ['dragenter', 'dragover']) {
    dropzone.addEventListener(type, (event) => {
      event.preventDefault();
      dropzone.classList.add('over');
    });
  }
  dropzone.addEventListener('dragleave', (event) => {
    if (!dropzone.contains(event.relatedTarget)) dropzone.classList.remove('over');
  });
  dropzone.addEventListener('drop', async (event) => {
    event.preventDefault();
    dropzone.classList.remove('over');
    if (!event.dataTransfer || running) return;
    chosen.textContent = 'Reading the dropped folders…';
    try {
      choose(await filesOfDrop(event.dataTransfer));
    } catch (error) {
      showError(errors, error, 'Could not read the drop');
    }
  });
  reset.addEventListener('click', () => {
    fileInput.value = '';
    folderInput.value = '';
    choose({ items: [], skipped: 0 });
  });

  const guard = (event) => {
    event.preventDefault();
    event.returnValue = '';
  };

  async function sendBatch(batch, run) {
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await api(paths.bulk(name), { method: 'POST', headers: { 'Content-Type': 'application/x-tar' }, body: tarBlob(batch), signal: run.signal });
        return await response.json();
      } catch (error) {
        if (error.name === 'AbortError' || !retryable(error) || attempt >= RETRIES) throw error;
        run.retries++;
        renderProgress(run);
        // The same body again stores nothing twice: what the lost answer stored comes back as duplicates.
        await sleep(500 * 2 ** attempt, run.signal);
      }
    }
  }

  function renderProgress(run) {
    const done = run.stored + run.duplicates + run.rejected;
    const seconds = (performance.now() - run.started) / 1000;
    progress.max = run.total;
    progress.value = done;
    progressText.textContent = `${fmt(done)} of ${fmt(run.total)}`;
    const rate = seconds > 0 ? Math.round(done / seconds) : 0;
    summary.textContent =
      `${fmt(run.stored)} stored · ${fmt(run.duplicates)} duplicate · ${fmt(run.rejected)} rejected` +
      (run.retries ? ` · ${plural(run.retries, 'retry', 'retries')}` : '') +
      ` · ${fmt(rate)} files/s`;
    summary.dataset.stored = String(run.stored);
    summary.dataset.duplicates = String(run.duplicates);
    summary.dataset.rejected = String(run.rejected);
    summary.dataset.rate = String(done / Math.max(seconds, 0.001));
    if (run.rejected > 0) {
      rejects.hidden = false;
      rejectTitle.textContent = `Rejected files (${fmt(run.rejected)})`;
    }
  }

  function reject(run, path, message) {
    run.rejected++;
    if (rejectList.children.length < LISTED_REJECTS) {
      rejectList.append(h('li', {}, h('span', { class: 'result-name', text: path }), h('span', { class: 'result-message', text: message })));
    }
  }

  const form = h(
    'form',
    { class: 'stack', novalidate: true },
    field('Category for loose files', category, 'Files inside a folder take the folder\u2019s name; files dropped on their own take this one.'),
    dropzone,
    errors,
    h('div', { class: 'actions' }, reset, cancel, submit),
    progressRow,
    summary,
    rejects,
  );

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showError(errors, null);
    if (running) return;
    if (chosenItems.length === 0) {
      showError(errors, 'Choose or drop images or a folder first.');
      return;
    }
    const label = category.value.trim();
    if (chosenItems.some((item) => item.folder === null) && !label) {
      showError(errors, 'Enter a category for the files that are not in a folder.');
      category.focus();
      return;
    }
    const items = chosenItems.map((item) => ({ ...item, folder: item.folder ?? label }));
    const controller = new AbortController();
    const run = { signal: controller.signal, controller, total: items.length, stored: 0, duplicates: 0, rejected: 0, retries: 0, started: performance.now() };
    running = run;
    clear(rejectList);
    rejects.hidden = true;
    progressRow.hidden = false;
    submit.disabled = true;
    reset.disabled = true;
    cancel.hidden = false;
    window.addEventListener('beforeunload', guard);
    renderProgress(run);

    const queue = batches(items);
    let fatal = null;
    const worker = async () => {
      while (queue.length > 0 && !fatal && !run.signal.aborted) {
        const batch = queue.shift();
        try {
          const result = await sendBatch(batch, run);
          run.stored += result.stored;
          run.duplicates += result.duplicates;
          for (const receipt of result.receipts) if (receipt.status === 'rejected') reject(run, receipt.path, receipt.error?.message ?? 'rejected');
        } catch (error) {
          if (error.name === 'AbortError') return;
          // A refusal of the whole request (a key without the write role, a missing dataset) stops the queue.
          if (error.status === 401 || error.status === 403 || error.status === 404) fatal = error;
          for (const item of batch) reject(run, `${item.folder}/${item.name}`, error.message);
        }
        renderProgress(run);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const cancelled = run.signal.aborted;
    window.removeEventListener('beforeunload', guard);
    running = null;
    submit.disabled = false;
    reset.disabled = false;
    cancel.hidden = true;
    renderProgress(run);
    const seconds = (performance.now() - run.started) / 1000;
    summary.dataset.seconds = String(seconds);
    summary.dataset.state = cancelled ? 'cancelled' : 'done';
    if (fatal) showError(errors, fatal, 'Upload stopped');
    const notSent = run.total - run.stored - run.duplicates - run.rejected;
    toast(
      `${cancelled ? 'Upload cancelled' : 'Upload finished'}: ${fmt(run.stored)} stored, ${fmt(run.duplicates)} duplicate, ${fmt(run.rejected)} rejected` +
        (notSent > 0 ? `, ${fmt(notSent)} not sent` : '') +
        '.',
      run.rejected || cancelled ? 'warn' : 'ok',
    );
    if (!cancelled) {
      fileInput.value = '';
      folderInput.value = '';
      chosenItems = [];
      chosen.textContent = 'Nothing chosen.';
    }
    // A cancel keeps what the server committed before it: the counts are read again either way.
    if (run.stored > 0 || cancelled) await onStored?.();
  });

  cancel.addEventListener('click', () => running?.controller.abort());

  return {
    element: section('Upload images', { class: 'card upload-card' }, form),
    busy: () => Boolean(running),
    destroy: () => {
      running?.controller.abort();
      window.removeEventListener('beforeunload', guard);
    },
  };
}
