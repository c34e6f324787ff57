// The datasets list, and one dataset: its chart, upload, thumbnail grid and sample detail.
import { ApiError, api, apiJson, contentUrl, paths } from './api.js';
import { clear, confirmDialog, fmt, fmtBytes, fmtTime, h, newId, plural, showError, toast } from './dom.js';
import { insightsCard } from './insights.js';

const NAME_PATTERN = '[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}';
const PAGE_SIZE = 60;
const UPLOAD_CONCURRENCY = 4;

const shapeText = (d) => `${d.width} × ${d.height} × ${d.channels}`;
const channelsText = (channels) => (channels === 1 ? 'grayscale' : 'RGB');

function field(label, control, hint) {
  const id = control.id || newId('field');
  control.id = id;
  const hintId = hint ? `${id}-hint` : undefined;
  if (hintId) control.setAttribute('aria-describedby', hintId);
  return h('div', { class: 'field' }, h('label', { for: id, text: label }), control, hint ? h('p', { id: hintId, class: 'hint', text: hint }) : null);
}

function section(title, attrs, ...children) {
  const titleId = newId('section');
  return h('section', { class: 'card', 'aria-labelledby': titleId, ...attrs }, h('h2', { id: titleId, text: title }), ...children);
}

// ---------------------------------------------------------------------------------------------
// Datasets

export function datasetListView(root) {
  const controller = new AbortController();
  const listSlot = h('div', { 'aria-live': 'polite' }, h('p', { class: 'muted', text: 'Loading datasets…' }));

  async function load() {
    try {
      const { datasets } = await apiJson(paths.datasets(), { signal: controller.signal });
      clear(listSlot).append(datasetTable(datasets));
    } catch (error) {
      if (error.name !== 'AbortError') showError(listSlot, error, 'Could not list datasets');
    }
  }

  root.append(
    h(
      'div',
      { class: 'page-head' },
      h('h1', { tabindex: '-1', text: 'Datasets' }),
      h('p', { class: 'muted', text: 'Each dataset keeps labeled images at one fixed shape; trainers fetch them as batches.' }),
    ),
    h('div', { class: 'columns wide-left' }, section('All datasets', {}, listSlot), createDatasetCard()),
  );
  load();
  return () => controller.abort();
}

function datasetTable(datasets) {
  if (datasets.length === 0) return h('p', { class: 'empty', text: 'No datasets yet. Create the first one with the form.' });
  const headers = ['Name', 'Shape (W × H × C)', 'Samples', 'Revision', 'Test share', 'Created'];
  return h(
    'table',
    { class: 'table responsive' },
    h('thead', {}, h('tr', {}, headers.map((text, i) => h('th', { scope: 'col', class: i >= 2 && i <= 4 ? 'num' : undefined, text })))),
    h(
      'tbody',
      {},
      datasets.map((d) =>
        h(
          'tr',
          { 'data-dataset': d.name },
          h('th', { scope: 'row', 'data-label': headers[0] }, h('a', { href: `#/datasets/${encodeURIComponent(d.name)}`, text: d.name })),
          h('td', { 'data-label': headers[1] }, shapeText(d), h('span', { class: 'muted', text: ` ${channelsText(d.channels)}` })),
          h('td', { class: 'num', 'data-label': headers[2], 'data-field': 'sampleCount', text: fmt(d.sampleCount) }),
          h('td', { class: 'num', 'data-label': headers[3], text: fmt(d.revision) }),
          h('td', { class: 'num', 'data-label': headers[4], text: `${d.testPercent}%` }),
          h('td', { 'data-label': headers[5] }, h('time', { datetime: d.createdAt, text: fmtTime(d.createdAt) })),
        ),
      ),
    ),
  );
}

function createDatasetCard() {
  const name = h('input', { name: 'name', required: true, pattern: NAME_PATTERN, maxlength: '64', autocomplete: 'off', spellcheck: 'false' });
  const width = h('input', { name: 'width', type: 'number', min: '1', max: '4096', value: '28', required: true, inputmode: 'numeric' });
  const height = h('input', { name: 'height', type: 'number', min: '1', max: '4096', value: '28', required: true, inputmode: 'numeric' });
  const channels = h(
    'select',
    { name: 'channels' },
    h('option', { value: '1', text: '1 (grayscale)' }),
    h('option', { value: '3', text: '3 (RGB)', selected: true }),
  );
  const testPercent = h('input', { name: 'testPercent', type: 'number', min: '0', max: '50', value: '0', required: true, inputmode: 'numeric' });
  const errors = h('div', { class: 'error-slot' });
  const submit = h('button', { type: 'submit', class: 'button primary', text: 'Create dataset' });
  const form = h(
    'form',
    { class: 'stack', novalidate: true },
    field('Name', name, 'Letters, digits, dot, dash and underscore; up to 64 characters.'),
    h('div', { class: 'row3' }, field('Width (px)', width), field('Height (px)', height), field('Channels', channels)),
    field('Test share (%)', testPercent, '0–50: the share of samples held out as the test split, fixed at creation.'),
    errors,
    h('div', { class: 'actions' }, submit),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showError(errors, null);
    const datasetName = name.value.trim();
    if (!datasetName) {
      showError(errors, 'Enter a name for the dataset.');
      name.focus();
      return;
    }
    submit.disabled = true;
    try {
      const response = await api(paths.dataset(datasetName), {
        method: 'PUT',
        json: { width: Number(width.value), height: Number(height.value), channels: Number(channels.value), testPercent: Number(testPercent.value) },
      });
      toast(response.status === 201 ? `Created dataset ${datasetName}.` : `Dataset ${datasetName} already exists with this shape.`);
      location.hash = `#/datasets/${encodeURIComponent(datasetName)}`;
    } catch (error) {
      showError(errors, error);
    } finally {
      submit.disabled = false;
    }
  });
  return section('New dataset', {}, form);
}

// ---------------------------------------------------------------------------------------------
// One dataset

export function datasetView(root, name) {
  const controller = new AbortController();
  const { signal } = controller;
  const objectUrls = new Set();
  const state = { dataset: null, stats: null, filter: { category: '', split: 'all' }, cursor: undefined, shown: 0, gridSeq: 0 };

  const heading = h('h1', { tabindex: '-1', text: name });
  const summary = h('dl', { class: 'stats' });
  const topErrors = h('div', { class: 'error-slot' });
  const datalistId = newId('categories');
  const datalist = h('datalist', { id: datalistId });

  // Chart
  const chart = h('div', { class: 'chart', role: 'list', 'aria-label': 'Samples per category' });
  const chartCard = section(
    'Samples per category',
    { class: 'card chart-card' },
    h(
      'div',
      { class: 'legend', 'aria-hidden': 'true' },
      h('span', { class: 'key train' }, 'Train'),
      h('span', { class: 'key test' }, 'Test'),
    ),
    chart,
  );

  // Grid
  const categoryFilter = h('select', { name: 'category' }, h('option', { value: '', text: 'All categories' }));
  const splitFilter = h(
    'select',
    { name: 'split' },
    h('option', { value: 'all', text: 'Train and test' }),
    h('option', { value: 'train', text: 'Train' }),
    h('option', { value: 'test', text: 'Test' }),
  );
  const gridStatus = h('p', { class: 'muted small grid-status', 'aria-live': 'polite' });
  const grid = h('ul', { class: 'thumbs', 'aria-label': 'Samples' });
  const gridErrors = h('div', { class: 'error-slot' });
  const moreButton = h('button', { type: 'button', class: 'button', hidden: true, text: 'Load more' });
  const samplesCard = section(
    'Samples',
    { class: 'card samples-card' },
    h('div', { class: 'filters' }, field('Category', categoryFilter), field('Split', splitFilter), gridStatus),
    gridErrors,
    grid,
    h('div', { class: 'actions center' }, moreButton),
  );

  const detail = sampleDialog();
  const upload = uploadCard();

  root.append(
    h(
      'nav',
      { class: 'breadcrumb', 'aria-label': 'Breadcrumb' },
      h('ol', {}, h('li', {}, h('a', { href: '#/', text: 'Datasets' })), h('li', { 'aria-current': 'page', text: name })),
    ),
    h('div', { class: 'page-head' }, heading, summary),
    topErrors,
    datalist,
    // Chart, upload, samples: the reading order on a phone; on a wide screen the upload is a side column.
    h('div', { class: 'dataset-layout' }, chartCard, upload.element, samplesCard),
    insightsCard(name, signal),
    detail.element,
  );

  // ---- data

  async function refreshCounts() {
    try {
      const [dataset, stats] = await Promise.all([apiJson(paths.dataset(name), { signal }), apiJson(paths.stats(name), { signal })]);
      state.dataset = dataset;
      state.stats = stats;
      showError(topErrors, null);
      renderSummary();
      renderChart();
      renderCategoryChoices();
      renderGridStatus();
      return true;
    } catch (error) {
      if (error.name === 'AbortError') return false;
      showError(topErrors, error, `Could not load dataset ${name}`);
      if (!state.dataset) clear(summary);
      return false;
    }
  }

  function renderSummary() {
    const d = state.dataset;
    const s = state.stats;
    const item = (label, value, fieldName) => h('div', {}, h('dt', { text: label }), h('dd', { 'data-field': fieldName, text: value }));
    clear(summary).append(
      item('Shape', `${shapeText(d)} (${channelsText(d.channels)})`, 'shape'),
      item('Samples', fmt(d.sampleCount), 'sampleCount'),
      item('Train / test', `${fmt(s.train)} / ${fmt(s.test)}`, 'split'),
      item('Test share', `${d.testPercent}%`, 'testPercent'),
      item('Revision', fmt(d.revision), 'revision'),
    );
  }

  function renderChart() {
    const categories = state.stats.categories;
    clear(chart);
    if (categories.length === 0) {
      chart.append(h('p', { class: 'empty', role: 'listitem', text: 'No samples yet. Upload images with a category to start.' }));
      return;
    }
    const max = Math.max(1, ...categories.map((c) => c.train + c.test));
    for (const c of categories) {
      const total = c.train + c.test;
      const train = h('span', { class: 'seg train' });
      const test = h('span', { class: 'seg test' });
      train.style.width = `${(c.train / max) * 100}%`;
      test.style.width = `${(c.test / max) * 100}%`;
      chart.append(
        h(
          'div',
          { class: `bar-row${total === 0 ? ' empty-row' : ''}`, role: 'listitem', 'data-category': c.name },
          h('span', { class: 'bar-label', title: `${c.name} (index ${c.index})` }, c.name),
          h('span', { class: 'bar', 'aria-hidden': 'true' }, train, test),
          h(
            'span',
            { class: 'bar-count' },
            h('span', { 'data-count': 'train', text: fmt(c.train) }),
            ' train · ',
            h('span', { 'data-count': 'test', text: fmt(c.test) }),
            ' test',
          ),
        ),
      );
    }
  }

  function renderCategoryChoices() {
    const names = state.stats.categories.map((c) => c.name);
    clear(datalist).append(...names.map((n) => h('option', { value: n })));
    const selected = categoryFilter.value;
    clear(categoryFilter).append(h('option', { value: '', text: 'All categories' }), ...names.map((n) => h('option', { value: n, text: n })));
    categoryFilter.value = names.includes(selected) ? selected : '';
  }

  /** How many samples the current filter matches, from the stats. */
  function filteredTotal() {
    if (!state.stats) return undefined;
    const { category, split } = state.filter;
    return state.stats.categories
      .filter((c) => !category || c.name === category)
      .reduce((sum, c) => sum + (split === 'train' ? c.train : split === 'test' ? c.test : c.train + c.test), 0);
  }

  function renderGridStatus() {
    const total = filteredTotal();
    gridStatus.textContent = total === undefined ? '' : `Showing ${fmt(state.shown)} of ${plural(total, 'sample')}`;
  }

  const observer = new IntersectionObserver(
    (entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        observer.unobserve(entry.target);
        loadThumb(entry.target);
      }
    },
    { rootMargin: '300px' },
  );

  async function loadThumb(img) {
    try {
      const url = await contentUrl(name, img.dataset.id, signal);
      objectUrls.add(url);
      img.src = url;
    } catch (error) {
      if (error.name !== 'AbortError') img.closest('.thumb')?.classList.add('broken');
    }
  }

  function revokeAll() {
    for (const url of objectUrls) URL.revokeObjectURL(url);
    objectUrls.clear();
  }

  function thumbLabel(sample) {
    return `Sample ${sample.id}, ${sample.category}, ${sample.split}`;
  }

  function thumbCard(sample) {
    const img = h('img', { alt: '', loading: 'lazy', decoding: 'async', 'data-id': sample.id, width: '120', height: '120' });
    img.addEventListener('load', () => {
      if (img.naturalWidth <= 64 && img.naturalHeight <= 64) img.classList.add('pixelated');
    });
    const button = h(
      'button',
      { type: 'button', class: 'thumb', 'aria-label': thumbLabel(sample), onclick: () => detail.open(sample.id, button) },
      h('span', { class: 'thumb-frame' }, img),
      h(
        'span',
        { class: 'thumb-caption', 'aria-hidden': 'true' },
        h('span', { class: 'thumb-category', text: sample.category }),
        h('span', { class: `split-tag ${sample.split}`, text: `#${sample.id} · ${sample.split}` }),
      ),
    );
    const item = h('li', { 'data-sample-id': sample.id, 'data-category': sample.category }, button);
    observer.observe(img);
    return item;
  }

  async function loadPage(reset) {
    const seq = reset ? ++state.gridSeq : state.gridSeq;
    if (reset) {
      state.cursor = undefined;
      state.shown = 0;
      observer.disconnect();
      revokeAll();
      clear(grid);
      grid.setAttribute('aria-busy', 'true');
    }
    moreButton.disabled = true;
    showError(gridErrors, null);
    try {
      const query = { limit: PAGE_SIZE, cursor: state.cursor, category: state.filter.category, split: state.filter.split === 'all' ? '' : state.filter.split };
      const page = await apiJson(paths.samples(name, query), { signal });
      if (seq !== state.gridSeq) return;
      grid.append(...page.samples.map(thumbCard));
      state.shown += page.samples.length;
      state.cursor = page.nextCursor;
      moreButton.hidden = !page.nextCursor;
      if (state.shown === 0) grid.append(h('li', { class: 'empty', text: state.filter.category || state.filter.split !== 'all' ? 'No samples match these filters.' : 'No samples yet.' }));
      renderGridStatus();
    } catch (error) {
      if (error.name !== 'AbortError') showError(gridErrors, error, 'Could not list samples');
    } finally {
      moreButton.disabled = false;
      grid.removeAttribute('aria-busy');
    }
  }

  function removeCard(id) {
    const item = grid.querySelector(`li[data-sample-id="${id}"]`);
    if (!item) return;
    const img = item.querySelector('img');
    if (img?.src.startsWith('blob:')) {
      URL.revokeObjectURL(img.src);
      objectUrls.delete(img.src);
    }
    item.remove();
    state.shown -= 1;
    renderGridStatus();
  }

  function updateCard(sample) {
    const item = grid.querySelector(`li[data-sample-id="${sample.id}"]`);
    if (!item) return;
    if (state.filter.category && state.filter.category !== sample.category) {
      removeCard(sample.id);
      return;
    }
    item.dataset.category = sample.category;
    item.querySelector('.thumb').setAttribute('aria-label', thumbLabel(sample));
    item.querySelector('.thumb-category').textContent = sample.category;
  }

  categoryFilter.addEventListener('change', () => {
    state.filter.category = categoryFilter.value;
    loadPage(true);
  });
  splitFilter.addEventListener('change', () => {
    state.filter.split = splitFilter.value;
    loadPage(true);
  });
  moreButton.addEventListener('click', () => loadPage(false));

  // ---- upload

  function uploadCard() {
    const category = h('input', { name: 'category', list: datalistId, required: true, pattern: NAME_PATTERN, autocomplete: 'off', spellcheck: 'false' });
    const fileInputId = newId('files');
    const fileInput = h('input', { id: fileInputId, type: 'file', multiple: true, accept: 'image/*', class: 'visually-hidden' });
    const chosen = h('p', { class: 'muted small', 'aria-live': 'polite', text: 'No files chosen.' });
    const dropzone = h(
      'div',
      { class: 'dropzone' },
      h('p', { class: 'drop-title', text: 'Drop images here' }),
      h('p', { class: 'muted small', text: 'PNG, JPEG, WebP, GIF or TIFF, many at once' }),
      fileInput,
      h('label', { for: fileInputId, class: 'button' }, 'Choose images…'),
      chosen,
    );
    const progress = h('progress', { max: '1', value: '0', 'aria-label': 'Upload progress' });
    const progressText = h('span', { class: 'small muted' });
    const progressRow = h('div', { class: 'progress-row', hidden: true }, progress, progressText);
    const results = h('ol', { class: 'results', 'aria-label': 'Upload results' });
    const errors = h('div', { class: 'error-slot' });
    const submit = h('button', { type: 'submit', class: 'button primary', text: 'Upload' });
    const reset = h('button', { type: 'button', class: 'button ghost', text: 'Clear' });
    let files = [];
    let busy = false;

    function choose(list) {
      if (busy) return;
      files = [...list];
      clear(results);
      progressRow.hidden = true;
      chosen.textContent = files.length === 0 ? 'No files chosen.' : `${plural(files.length, 'file')} chosen (${fmtBytes(files.reduce((sum, f) => sum + f.size, 0))}).`;
    }

    fileInput.addEventListener('change', () => choose(fileInput.files));
    for (const type of ['dragenter', 'dragover']) {
      dropzone.addEventListener(type, (event) => {
        event.preventDefault();
        dropzone.classList.add('over');
      });
    }
    dropzone.addEventListener('dragleave', (event) => {
      if (!dropzone.contains(event.relatedTarget)) dropzone.classList.remove('over');
    });
    dropzone.addEventListener('drop', (event) => {
      event.preventDefault();
      dropzone.classList.remove('over');
      if (event.dataTransfer?.files?.length) choose(event.dataTransfer.files);
    });
    reset.addEventListener('click', () => {
      fileInput.value = '';
      choose([]);
    });

    const form = h(
      'form',
      { class: 'stack', novalidate: true },
      field('Category', category, 'Every file in this upload gets this category. Choose one or type a new one.'),
      dropzone,
      errors,
      h('div', { class: 'actions' }, reset, submit),
      progressRow,
      results,
    );

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      showError(errors, null);
      const label = category.value.trim();
      if (files.length === 0) {
        showError(errors, 'Choose or drop one or more images first.');
        return;
      }
      if (!label) {
        showError(errors, 'Enter a category for these images.');
        category.focus();
        return;
      }
      busy = true;
      submit.disabled = true;
      const batch = files;
      const rows = batch.map((file) => {
        const status = h('span', { class: 'badge', text: 'Waiting' });
        const message = h('span', { class: 'result-message' });
        const row = h('li', { 'data-file': file.name }, h('span', { class: 'result-name', text: file.name }), status, message);
        return { row, status, message };
      });
      clear(results).append(...rows.map((r) => r.row));
      let done = 0;
      const tally = { stored: 0, duplicate: 0, rejected: 0 };
      progress.max = batch.length;
      progress.value = 0;
      progressRow.hidden = false;
      progressText.textContent = `0 of ${batch.length}`;

      const one = async (index) => {
        const file = batch[index];
        const { row, status, message } = rows[index];
        status.textContent = 'Uploading';
        try {
          // A raw image/* body, so each file gets its own answer. The server checks the bytes
          // themselves; a file the browser cannot type is still sent as an image for it to judge.
          const response = await api(`${paths.samples(name)}?category=${encodeURIComponent(label)}`, {
            method: 'POST',
            headers: { 'Content-Type': file.type.startsWith('image/') ? file.type : 'image/x-unknown' },
            body: file,
          });
          const sample = await response.json();
          if (sample.duplicate) {
            tally.duplicate++;
            row.dataset.result = 'duplicate';
            status.className = 'badge warn';
            status.textContent = 'Duplicate';
            message.textContent = `already stored as #${sample.id}`;
          } else {
            tally.stored++;
            row.dataset.result = 'stored';
            status.className = 'badge ok';
            status.textContent = 'Stored';
            message.textContent = `#${sample.id} · ${sample.split}`;
          }
        } catch (error) {
          tally.rejected++;
          row.dataset.result = 'rejected';
          status.className = 'badge err';
          status.textContent = 'Rejected';
          message.textContent = error instanceof ApiError ? error.message : String(error);
        }
        done++;
        progress.value = done;
        progressText.textContent = `${done} of ${batch.length}`;
      };

      let next = 0;
      const worker = async () => {
        while (next < batch.length) await one(next++);
      };
      await Promise.all(Array.from({ length: Math.min(UPLOAD_CONCURRENCY, batch.length) }, worker));
      busy = false;
      submit.disabled = false;
      fileInput.value = '';
      files = [];
      chosen.textContent = 'No files chosen.';
      toast(`Upload finished: ${tally.stored} stored, ${tally.duplicate} duplicate, ${tally.rejected} rejected.`, tally.rejected ? 'warn' : 'ok');
      if (tally.stored > 0) {
        await refreshCounts();
        await loadPage(true);
      }
    });

    return { element: section('Upload images', { class: 'card upload-card' }, form) };
  }

  // ---- sample detail

  function sampleDialog() {
    const titleId = newId('sample-title');
    const title = h('h2', { id: titleId, text: 'Sample' });
    const closeButton = h('button', { type: 'button', class: 'button ghost icon', 'aria-label': 'Close' }, '×');
    const image = h('img', { alt: '' });
    const caption = h('figcaption');
    const imageFrame = h('figure', { class: 'detail-figure' }, h('div', { class: 'detail-image' }, image), caption);
    image.addEventListener('load', () => {
      caption.textContent = `Original, ${image.naturalWidth} × ${image.naturalHeight} px, at full size`;
    });
    const facts = h('dl', { class: 'facts' });
    const errors = h('div', { class: 'error-slot' });
    const relabelInput = h('input', { name: 'category', list: datalistId, required: true, pattern: NAME_PATTERN, autocomplete: 'off', spellcheck: 'false' });
    const relabelButton = h('button', { type: 'submit', class: 'button primary', text: 'Relabel' });
    const relabelForm = h(
      'form',
      { class: 'relabel', novalidate: true },
      field('New category', relabelInput, 'Choose an existing category or type a new one.'),
      relabelButton,
    );
    const deleteButton = h('button', { type: 'button', class: 'button danger', text: 'Delete sample…' });
    const element = h(
      'dialog',
      { class: 'sample-dialog', 'aria-labelledby': titleId },
      h('div', { class: 'dialog-head' }, title, closeButton),
      h(
        'div',
        { class: 'detail' },
        imageFrame,
        h('div', { class: 'detail-side' }, facts, errors, relabelForm, h('div', { class: 'actions' }, deleteButton)),
      ),
    );
    let current = null;
    let opener = null;
    let imageUrl = null;

    function renderFacts(sample) {
      current = sample;
      title.textContent = `Sample #${sample.id}`;
      image.alt = `Sample ${sample.id}, original image (${sample.category})`;
      const fact = (label, value, attrs = {}) => [h('dt', { text: label }), h('dd', attrs, value)];
      clear(facts).append(
        ...fact('ID', String(sample.id), { 'data-field': 'id' }),
        ...fact('Category', sample.category, { 'data-field': 'category' }),
        ...fact('Split', sample.split),
        ...fact('Revision added', fmt(sample.revision), { 'data-field': 'revision' }),
        ...fact('SHA-256', h('code', { class: 'hash', text: sample.sha256 }), { 'data-field': 'sha256' }),
        ...fact('Type', `${sample.mediaType}, ${fmtBytes(sample.bytes)}`),
        ...fact('Added', h('time', { datetime: sample.createdAt, text: fmtTime(sample.createdAt) })),
      );
      relabelInput.value = '';
      relabelInput.placeholder = sample.category;
    }

    function dropImage() {
      if (imageUrl) URL.revokeObjectURL(imageUrl);
      imageUrl = null;
      image.removeAttribute('src');
      caption.textContent = '';
    }

    async function open(id, from) {
      opener = from ?? null;
      showError(errors, null);
      dropImage();
      clear(facts).append(h('dd', { class: 'muted', text: 'Loading…' }));
      title.textContent = `Sample #${id}`;
      if (!element.open) element.showModal();
      closeButton.focus();
      try {
        const [sample, url] = await Promise.all([apiJson(paths.sample(name, id), { signal }), contentUrl(name, id, signal)]);
        imageUrl = url;
        image.src = url;
        renderFacts(sample);
      } catch (error) {
        if (error.name !== 'AbortError') showError(errors, error);
      }
    }

    function close() {
      if (element.open) element.close();
    }

    element.addEventListener('close', () => {
      dropImage();
      current = null;
      if (opener?.isConnected) opener.focus();
      else heading.focus();
    });
    closeButton.addEventListener('click', close);
    // A click on the backdrop (outside the dialog box) closes it too.
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
        updateCard(sample);
        await refreshCounts();
        toast(`Sample #${sample.id} is now in ${sample.category}.`);
      } catch (error) {
        showError(errors, error, 'Relabel failed');
      } finally {
        relabelButton.disabled = false;
      }
    });

    deleteButton.addEventListener('click', async () => {
      if (!current) return;
      const sample = current;
      const ok = await confirmDialog({
        title: `Delete sample #${sample.id}?`,
        message: 'It leaves the dataset now; batches pinned to an earlier revision still see it. Deleting needs the admin role.',
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
        removeCard(sample.id);
        await refreshCounts();
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

  // ---- start

  (async () => {
    if (await refreshCounts()) await loadPage(true);
  })();

  return () => {
    controller.abort();
    observer.disconnect();
    detail.close();
    revokeAll();
  };
}
