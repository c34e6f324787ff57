// The datasets list, and one dataset: its chart, upload, thumbnail grid and sample detail.
import { api, apiJson, paths, session } from './api.js';
import { sampleDialog } from './detail.js';
import { clear, fmt, fmtTime, h, newId, plural, showError, toast } from './dom.js';
import { virtualGrid } from './grid.js';
import { uploadCard } from './upload.js';
import { insightsCard } from './insights.js';
import { bulkActions, historyCard } from './curation.js';
import { reviewCard } from './review.js';

const NAME_PATTERN = '[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}';

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
    // Creating a dataset needs the write role: a read key sees the list alone.
    session.can('write')
      ? h('div', { class: 'columns wide-left' }, section('All datasets', {}, listSlot), createDatasetCard())
      : section('All datasets', {}, listSlot),
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
  const state = { dataset: null, stats: null, filter: { category: '', split: 'all', tag: '', q: '', sort: 'oldest' } };

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
    h('div', { class: 'legend', 'aria-hidden': 'true' }, h('span', { class: 'key train' }, 'Train'), h('span', { class: 'key test' }, 'Test')),
    chart,
  );

  // Grid, filters, selection
  const categoryFilter = h('select', { name: 'category' }, h('option', { value: '', text: 'All categories' }));
  const splitFilter = h(
    'select',
    { name: 'split' },
    h('option', { value: 'all', text: 'Train and test' }),
    h('option', { value: 'train', text: 'Train' }),
    h('option', { value: 'test', text: 'Test' }),
  );
  const sortChoice = h(
    'select',
    { name: 'sort' },
    h('option', { value: 'oldest', text: 'Oldest first' }),
    h('option', { value: 'newest', text: 'Newest first' }),
    h('option', { value: 'category', text: 'Category' }),
    h('option', { value: 'filename', text: 'Filename' }),
  );
  const searchInput = h('input', { name: 'q', type: 'search', autocomplete: 'off', spellcheck: 'false', maxlength: '256' });
  const tagFilter = h('input', { name: 'tag', type: 'search', autocomplete: 'off', spellcheck: 'false', maxlength: '64' });
  const findInput = h('input', { name: 'id', type: 'number', min: '1', inputmode: 'numeric', autocomplete: 'off' });
  const findForm = h('form', { class: 'find', novalidate: true }, field('Sample id', findInput), h('button', { type: 'submit', class: 'button', text: 'Open' }));
  const gridErrors = h('div', { class: 'error-slot' });
  const selectionText = h('span', { class: 'selection-count', 'aria-live': 'polite' });
  const selectAllButton = h('button', { type: 'button', class: 'button small' });
  const clearSelectionButton = h('button', { type: 'button', class: 'button small ghost', text: 'Clear selection' });
  const bulk = bulkActions({
    name,
    datalistId,
    target: () => grid.selectionTarget(),
    count: () => grid.selection().count,
    done: async () => {
      await refreshCounts();
      await grid.reset(state.filter, filteredTotal());
      changeLog.refresh();
    },
  });
  const selectionBar = h(
    'div',
    { class: 'selection-bar', role: 'region', 'aria-label': 'Selection', hidden: true },
    h('div', { class: 'selection-line' }, selectionText, selectAllButton, clearSelectionButton),
    bulk.controls,
  );

  /** The grid position the detail shows: focus goes back there when it closes (the browser would focus the opener). */
  let detailIndex = 0;
  const grid = virtualGrid({
    name,
    label: 'Samples',
    onOpen: (id) => {
      detailIndex = grid.active;
      detail.open(id);
    },
    onSelection: renderSelection,
  });
  const samplesCard = section(
    'Samples',
    { class: 'card samples-card' },
    h(
      'div',
      { class: 'filters' },
      field('Search', searchInput, 'Id, SHA-256 prefix, filename or tag'),
      field('Tag', tagFilter),
      field('Category', categoryFilter),
      field('Split', splitFilter),
      field('Order', sortChoice),
      findForm,
    ),
    h(
      'p',
      { class: 'muted small keys-help', id: newId('grid-help') },
      'Arrow keys move through the grid, Enter opens a sample, Space selects it (Shift extends, Ctrl+A selects every match). In a sample: ← and → for previous and next, + and − to zoom, Esc to close.',
    ),
    gridErrors,
    bulk.result,
    selectionBar,
    grid.element,
  );

  const detail = sampleDialog({
    name,
    datalistId,
    field,
    step: async (delta) => {
      const sample = await grid.moveTo(detailIndex + delta, { focus: false });
      detailIndex = grid.active;
      return sample;
    },
    onRelabelled: async (sample) => {
      grid.updateSample(sample);
      await refreshCounts();
      changeLog.refresh();
    },
    onAnnotated: () => changeLog.refresh(),
    onDeleted: async (sample) => {
      grid.removeId(sample.id);
      await refreshCounts();
      changeLog.refresh();
    },
    onClosed: () => {
      if (grid.total > 0) grid.moveTo(detailIndex);
      else heading.focus();
    },
  });
  const upload = session.can('write')
    ? uploadCard({
        name,
        datalistId,
        field,
        section,
        onStored: async () => {
          if (await refreshCounts()) await grid.reset(state.filter, filteredTotal());
          changeLog.refresh();
        },
      })
    : null;
  const changeLog = historyCard({ name, signal, section });

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
    h('div', { class: `dataset-layout${upload ? '' : ' no-upload'}` }, chartCard, upload?.element, samplesCard),
    insightsCard(name, signal),
    changeLog.element,
    reviewCard(name, signal),
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
      grid.setTotal(filteredTotal());
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
      chart.append(h('p', { class: 'empty', role: 'listitem', text: session.can('write') ? 'No samples yet. Upload images with a category to start.' : 'No samples yet.' }));
      return;
    }
    const max = Math.max(1, ...categories.map((c) => c.train + c.test));
    // A long class list (hundreds of categories) shows its 40 largest; the filter lists them all.
    const shown = categories.length > 40 ? [...categories].sort((a, b) => b.train + b.test - (a.train + a.test)).slice(0, 40) : categories;
    for (const c of shown) {
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
          h('span', { class: 'bar-count' }, h('span', { 'data-count': 'train', text: fmt(c.train) }), ' train · ', h('span', { 'data-count': 'test', text: fmt(c.test) }), ' test'),
        ),
      );
    }
    if (shown.length < categories.length) chart.append(h('p', { class: 'muted small', role: 'listitem', text: `The 40 largest of ${fmt(categories.length)} categories.` }));
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
    const { category, split, tag, q } = state.filter;
    // A search or a tag: the stats do not count it; the listing does as it goes.
    if (tag || q) return undefined;
    return state.stats.categories
      .filter((c) => !category || c.name === category)
      .reduce((sum, c) => sum + (split === 'train' ? c.train : split === 'test' ? c.test : c.train + c.test), 0);
  }

  function renderSelection({ count, all, exact }) {
    selectionBar.hidden = count === 0;
    selectionText.textContent = all ? (exact ? `All ${plural(count, 'matching sample')} selected` : 'All matching samples selected') : `${plural(count, 'sample')} selected`;
    selectAllButton.hidden = all;
    selectAllButton.textContent = grid.exact ? `Select all ${fmt(grid.total)} matching` : 'Select all matching';
  }
  selectAllButton.addEventListener('click', () => grid.selectAll());
  clearSelectionButton.addEventListener('click', () => grid.clearSelection());

  function applyFilter() {
    const filter = { category: categoryFilter.value, split: splitFilter.value, tag: tagFilter.value.trim(), q: searchInput.value.trim(), sort: sortChoice.value };
    if (Object.entries(filter).every(([field, value]) => state.filter[field] === value)) return;
    state.filter = filter;
    showError(gridErrors, null);
    grid.reset(state.filter, filteredTotal()).catch((error) => showError(gridErrors, error, 'Could not list samples'));
  }
  categoryFilter.addEventListener('change', applyFilter);
  splitFilter.addEventListener('change', applyFilter);
  sortChoice.addEventListener('change', applyFilter);
  // Typing searches after a pause; Enter or clearing the box searches at once.
  let typing = 0;
  for (const input of [searchInput, tagFilter]) {
    input.addEventListener('input', () => {
      clearTimeout(typing);
      typing = setTimeout(applyFilter, 300);
    });
    input.addEventListener('search', applyFilter);
    input.addEventListener('change', applyFilter);
  }
  findForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const id = Number(findInput.value);
    if (!Number.isInteger(id) || id < 1) {
      showError(gridErrors, 'Enter a sample id: a whole number from 1.');
      findInput.setAttribute('aria-invalid', 'true');
      findInput.focus();
      return;
    }
    findInput.removeAttribute('aria-invalid');
    showError(gridErrors, null);
    detail.open(id);
  });

  // ---- start

  (async () => {
    if (await refreshCounts()) {
      grid.reset(state.filter, filteredTotal()).catch((error) => {
        if (error.name !== 'AbortError') showError(gridErrors, error, 'Could not list samples');
      });
    }
  })();

  const dispose = () => {
    clearTimeout(typing);
    controller.abort();
    upload?.destroy();
    detail.close();
    grid.destroy();
  };
  dispose.busy = () => Boolean(upload?.busy());
  return dispose;
}
