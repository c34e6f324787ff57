// A sample's detail: the image fitted to the screen with a zoom, previous/next through the grid
// (buttons and arrow keys), its facts, and relabel and delete for keys that may do them.
import { api, apiJson, contentUrl, paths, session, thumbnailUrl } from './api.js';
import { auditList, parseTags } from './curation.js';
import { clear, confirmDialog, fmt, fmtBytes, fmtTime, h, newId, showError, toast } from './dom.js';

const ZOOMS = [0.25, 0.5, 1, 2, 4, 8];

/**
 * sampleDialog({name, datalistId, field, step, onRelabelled, onDeleted, onClosed}): `step(delta)`
 * moves the grid's position and resolves to the sample there (or undefined at an end).
 */
export function sampleDialog({ name, datalistId, field, step, onRelabelled, onAnnotated, onDeleted, onClosed }) {
  const titleId = newId('sample-title');
  const title = h('h2', { id: titleId, text: 'Sample' });
  const closeButton = h('button', { type: 'button', class: 'button ghost icon', 'aria-label': 'Close' }, '×');
  const previousButton = h('button', { type: 'button', class: 'button small', 'aria-keyshortcuts': 'ArrowLeft', text: '← Previous' });
  const nextButton = h('button', { type: 'button', class: 'button small', 'aria-keyshortcuts': 'ArrowRight', text: 'Next →' });
  const image = h('img', { alt: '' });
  const stage = h('div', { class: 'detail-image fit' }, image);
  const caption = h('figcaption', { 'aria-live': 'polite' });
  const fitButton = h('button', { type: 'button', class: 'button small', 'aria-pressed': 'true', text: 'Fit' });
  const outButton = h('button', { type: 'button', class: 'button small', 'aria-label': 'Zoom out', 'aria-keyshortcuts': '-', text: '−' });
  const inButton = h('button', { type: 'button', class: 'button small', 'aria-label': 'Zoom in', 'aria-keyshortcuts': '+', text: '+' });
  const actualButton = h('button', { type: 'button', class: 'button small', 'aria-keyshortcuts': '1', text: '100%' });
  const zoomBar = h('div', { class: 'zoom-bar', role: 'toolbar', 'aria-label': 'Zoom' }, fitButton, outButton, actualButton, inButton);
  const figure = h('figure', { class: 'detail-figure' }, stage, h('div', { class: 'figure-foot' }, zoomBar, caption));
  const facts = h('dl', { class: 'facts' });
  const errors = h('div', { class: 'error-slot' });
  const relabelInput = h('input', { name: 'category', list: datalistId, required: true, autocomplete: 'off', spellcheck: 'false' });
  const relabelButton = h('button', { type: 'submit', class: 'button primary', text: 'Relabel' });
  const relabelForm = h('form', { class: 'relabel', novalidate: true }, field('New category', relabelInput, 'Choose an existing category or type a new one.'), relabelButton);
  const deleteButton = h('button', { type: 'button', class: 'button danger', text: 'Delete sample…' });
  const deleteRow = h('div', { class: 'actions' }, deleteButton);
  const tagsInput = h('input', { name: 'tags', autocomplete: 'off', spellcheck: 'false' });
  const tagsButton = h('button', { type: 'submit', class: 'button', text: 'Save tags' });
  const tagsForm = h('form', { class: 'relabel', novalidate: true }, field('Tags', tagsInput, 'Separated by commas; annotations raise no revision.'), tagsButton);
  let auditSample = 0;
  const audit = auditList({ load: (cursor) => apiJson(paths.sampleAudit(name, auditSample, { limit: 20, cursor })), showSample: false, caption: 'History of this sample' });
  const historyTitleId = newId('sample-history');
  const historyBlock = h('section', { class: 'sample-history', 'aria-labelledby': historyTitleId }, h('h3', { id: historyTitleId, text: 'History' }), audit.element);
  const element = h(
    'dialog',
    { class: 'sample-dialog', 'aria-labelledby': titleId },
    h('div', { class: 'dialog-head' }, title, h('div', { class: 'dialog-nav' }, previousButton, nextButton, closeButton)),
    h('div', { class: 'detail' }, figure, h('div', { class: 'detail-side' }, facts, errors, relabelForm, tagsForm, deleteRow, historyBlock)),
  );
  let current = null;
  let urls = [];
  let zoom = null; // null: fit to the stage; a number: that scale of the original's pixels
  let sequence = 0;

  function applyZoom() {
    const natural = { width: image.naturalWidth, height: image.naturalHeight };
    fitButton.setAttribute('aria-pressed', String(zoom === null));
    if (!natural.width) return;
    let scale;
    if (zoom === null) {
      stage.classList.add('fit');
      image.style.width = '';
      image.style.height = '';
      scale = Math.min(stage.clientWidth / natural.width, stage.clientHeight / natural.height);
    } else {
      stage.classList.remove('fit');
      image.style.width = `${Math.round(natural.width * zoom)}px`;
      image.style.height = `${Math.round(natural.height * zoom)}px`;
      scale = zoom;
    }
    // Enlarged pixels stay square (a 28 × 28 digit is readable, not a blur).
    image.classList.toggle('pixelated', scale > 1.5);
    const shown = Math.round(scale * 100);
    caption.textContent = `Original, ${fmt(natural.width)} × ${fmt(natural.height)} px, shown at ${shown}%${zoom === null ? ' (fitted)' : ''}`;
    outButton.disabled = zoom !== null && zoom <= ZOOMS[0];
    inButton.disabled = zoom !== null && zoom >= ZOOMS[ZOOMS.length - 1];
  }

  function currentScale() {
    if (zoom !== null) return zoom;
    return Math.min(stage.clientWidth / (image.naturalWidth || 1), stage.clientHeight / (image.naturalHeight || 1));
  }

  function zoomBy(direction) {
    const scale = currentScale();
    zoom = direction > 0 ? (ZOOMS.find((z) => z > scale + 1e-6) ?? ZOOMS[ZOOMS.length - 1]) : ([...ZOOMS].reverse().find((z) => z < scale - 1e-6) ?? ZOOMS[0]);
    applyZoom();
  }

  fitButton.addEventListener('click', () => {
    zoom = null;
    applyZoom();
  });
  actualButton.addEventListener('click', () => {
    zoom = 1;
    applyZoom();
  });
  inButton.addEventListener('click', () => zoomBy(1));
  outButton.addEventListener('click', () => zoomBy(-1));
  image.addEventListener('load', applyZoom);
  new ResizeObserver(() => {
    if (element.open && zoom === null) applyZoom();
  }).observe(stage);

  function renderFacts(sample) {
    current = sample;
    title.textContent = `Sample #${sample.id}`;
    image.alt = `Sample ${sample.id}, ${sample.category}`;
    const fact = (label, value, attrs = {}) => [h('dt', { text: label }), h('dd', attrs, value)];
    clear(facts).append(
      ...fact('ID', String(sample.id), { 'data-field': 'id' }),
      ...fact('Category', sample.category, { 'data-field': 'category' }),
      ...fact('Split', sample.split),
      ...fact('Revision added', fmt(sample.revision), { 'data-field': 'revision' }),
      ...fact('SHA-256', h('code', { class: 'hash', text: sample.sha256 }), { 'data-field': 'sha256' }),
      ...fact('Type', `${sample.mediaType}, ${fmtBytes(sample.bytes)}`),
      ...fact('Added', h('time', { datetime: sample.createdAt, text: fmtTime(sample.createdAt) })),
      ...fact('Filename', sample.filename ?? '—', { 'data-field': 'filename' }),
      ...fact('Tags', sample.tags?.length ? h('span', { class: 'tags' }, sample.tags.map((t) => h('span', { class: 'tag', text: t }))) : '—', { 'data-field': 'tags' }),
      ...fact('Metadata', sample.metadata && Object.keys(sample.metadata).length ? h('pre', { class: 'metadata', text: JSON.stringify(sample.metadata, null, 2) }) : '—', { 'data-field': 'metadata' }),
    );
    tagsInput.value = (sample.tags ?? []).join(', ');
    relabelInput.value = '';
    relabelInput.placeholder = sample.category;
  }

  function dropImages() {
    for (const url of urls) URL.revokeObjectURL(url);
    urls = [];
    image.removeAttribute('src');
    image.style.width = '';
    image.style.height = '';
    caption.textContent = '';
  }

  /** Opens sample `id` (in the open dialog too: previous/next). */
  async function open(id) {
    const mine = ++sequence;
    showError(errors, null);
    dropImages();
    zoom = null;
    current = null;
    clear(facts).append(h('dd', { class: 'muted', text: 'Loading…' }));
    title.textContent = `Sample #${id}`;
    relabelForm.hidden = !session.can('write');
    tagsForm.hidden = !session.can('write');
    auditSample = id;
    audit.refresh();
    deleteRow.hidden = !session.can('admin');
    if (!element.open) {
      element.showModal();
      closeButton.focus();
    }
    try {
      // The preview first (small, usually cached), then the original in its place.
      const preview = thumbnailUrl(name, id, 512).then((url) => {
        urls.push(url);
        if (mine === sequence && !image.src) image.src = url;
      });
      const [sample, original] = await Promise.all([apiJson(paths.sample(name, id)), contentUrl(name, id)]);
      urls.push(original);
      if (mine !== sequence) return;
      renderFacts(sample);
      image.src = original;
      await preview.catch(() => undefined);
    } catch (error) {
      if (mine === sequence && error.name !== 'AbortError') showError(errors, error);
    }
  }

  async function move(delta) {
    const sample = await step(delta);
    if (sample && element.open) await open(sample.id);
  }

  previousButton.addEventListener('click', () => move(-1));
  nextButton.addEventListener('click', () => move(1));
  element.addEventListener('keydown', (event) => {
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement || event.altKey || event.ctrlKey || event.metaKey) return;
    const actions = { ArrowLeft: () => move(-1), ArrowRight: () => move(1), '+': () => zoomBy(1), '=': () => zoomBy(1), '-': () => zoomBy(-1), 0: () => fitButton.click(), 1: () => actualButton.click() };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });

  function close() {
    if (element.open) element.close();
  }

  element.addEventListener('close', () => {
    sequence++;
    dropImages();
    current = null;
    onClosed?.();
  });
  closeButton.addEventListener('click', close);
  element.addEventListener('click', (event) => {
    if (event.target === element) close();
  });

  relabelForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!current) return;
    showError(errors, null);
    const label = relabelInput.value.trim();
    if (!label) {
      showError(errors, 'Choose or type a category.');
      relabelInput.focus();
      return;
    }
    relabelButton.disabled = true;
    try {
      const sample = await apiJson(paths.sample(name, current.id), { method: 'PATCH', json: { category: label } });
      renderFacts(sample);
      audit.refresh();
      await onRelabelled?.(sample);
      toast(`Sample #${sample.id} is now in ${sample.category}.`);
    } catch (error) {
      showError(errors, error, 'Relabel failed');
    } finally {
      relabelButton.disabled = false;
    }
  });

  tagsForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!current) return;
    showError(errors, null);
    tagsButton.disabled = true;
    try {
      const sample = await apiJson(paths.sample(name, current.id), { method: 'PATCH', json: { tags: parseTags(tagsInput.value) } });
      renderFacts(sample);
      audit.refresh();
      onAnnotated?.(sample);
      toast(`Saved the tags of sample #${sample.id}.`);
    } catch (error) {
      showError(errors, error, 'Saving the tags failed');
    } finally {
      tagsButton.disabled = false;
    }
  });

  deleteButton.addEventListener('click', async () => {
    if (!current) return;
    const sample = current;
    const ok = await confirmDialog({
      title: `Delete sample #${sample.id}?`,
      message: 'It leaves the dataset now; batches pinned to an earlier revision still see it.',
      confirm: 'Delete',
      danger: true,
    });
    if (!ok) {
      deleteButton.focus();
      return;
    }
    showError(errors, null);
    deleteButton.disabled = true;
    try {
      await api(paths.sample(name, sample.id), { method: 'DELETE' });
      close();
      await onDeleted?.(sample);
      toast(`Deleted sample #${sample.id}.`);
    } catch (error) {
      showError(errors, error, 'Delete failed');
      deleteButton.focus();
    } finally {
      deleteButton.disabled = false;
    }
  });

  return { element, open, close };
}
