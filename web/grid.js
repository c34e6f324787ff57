// A virtualised grid of sample previews: only the rows in view (and a few around them) are in the
// DOM, whatever the dataset's size. Samples are listed page by page with the list API's cursor as
// the view needs them; what is kept of each listed sample is its id, category and split, in typed
// arrays (a few bytes a sample), so that 100,000 samples cost well under a megabyte.
import { apiJson, paths, thumbnailUrl } from './api.js';
import { fmt, h } from './dom.js';

const MIN_CELL = 132;
const MIN_CELL_NARROW = 100;
const GAP = 12;
const CAPTION = 46;
/** Rows drawn above and below the view, so a short scroll shows previews already there. */
const OVERSCAN = 2;
const FIRST_PAGE = 300;
const PAGE = 1000;
const THUMB_SIZE = 128;
/** Object URLs of previews kept for scrolling back; the HTTP cache keeps the rest. */
const KEPT_URLS = 600;
const THUMB_CONCURRENCY = 6;

/** A growable column of numbers. */
class Column {
  constructor(Type) {
    this.Type = Type;
    this.values = new Type(1024);
  }
  set(i, v) {
    if (i >= this.values.length) {
      const next = new this.Type(Math.max(i + 1, this.values.length * 2));
      next.set(this.values);
      this.values = next;
    }
    this.values[i] = v;
  }
  get(i) {
    return this.values[i];
  }
  remove(i, length) {
    this.values.copyWithin(i, i + 1, length);
  }
}

/**
 * virtualGrid({name, label, onOpen, onSelection}) → the grid. `reset(filter, total)` starts a
 * listing; `total` is what the stats count for the filter (the scroll height before every page
 * is listed; the last page makes it exact).
 */
export function virtualGrid({ name, label, onOpen, onSelection }) {
  const controller = new AbortController();
  const state = {
    filter: { category: '', split: 'all' },
    total: 0,
    /** Whether `total` is known exactly (from the stats, or the listing reached its end). */
    exact: false,
    loaded: 0,
    cursor: undefined,
    done: false,
    generation: 0,
    loading: null,
    error: null,
    cols: 1,
    cellWidth: MIN_CELL,
    rowHeight: MIN_CELL + CAPTION + GAP,
    active: 0,
    anchor: 0,
    rendered: new Map(),
    frame: 0,
  };
  const ids = new Column(Int32Array);
  const cats = new Column(Int16Array);
  const splits = new Column(Uint8Array);
  const categoryNames = [];
  const categoryIndex = new Map();
  /** Selection: explicit ids, or everything the filter matches except some. */
  const selection = { all: false, ids: new Set(), except: new Set() };
  const urls = new Map();
  const thumbQueue = [];
  let thumbsActive = 0;

  const grid = h('div', { role: 'grid', class: 'vgrid', 'aria-label': label, 'aria-multiselectable': 'true', 'aria-rowcount': '0', 'aria-colcount': '1' });
  const viewport = h('div', { class: 'grid-viewport' }, grid);
  const emptyNote = h('p', { class: 'empty grid-empty', hidden: true });

  function categoryId(categoryName) {
    let index = categoryIndex.get(categoryName);
    if (index === undefined) {
      index = categoryNames.length;
      categoryNames.push(categoryName);
      categoryIndex.set(categoryName, index);
    }
    return index;
  }

  /** The sample at `index` when listed: {id, category, split}. */
  function sampleAt(index) {
    if (index < 0 || index >= state.loaded) return undefined;
    return { id: ids.get(index), category: categoryNames[cats.get(index)], split: splits.get(index) ? 'test' : 'train' };
  }

  function indexOfId(id) {
    // By category or filename the ids come in no order: a scan over what is listed.
    if (state.filter.sort === 'category' || state.filter.sort === 'filename') {
      for (let i = 0; i < state.loaded; i++) if (ids.get(i) === id) return i;
      return -1;
    }
    // Ids are listed in ascending order (descending, newest first): a binary search over what is listed.
    const up = state.filter.sort !== 'newest';
    let lo = 0;
    let hi = state.loaded - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const value = ids.get(mid);
      if (value === id) return mid;
      if (up ? value < id : value > id) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  async function loadPage() {
    const generation = state.generation;
    const limit = state.loaded === 0 ? FIRST_PAGE : PAGE;
    const { category, split, tag, q, sort } = state.filter;
    const page = await apiJson(paths.samples(name, { limit, cursor: state.cursor, category, split: split === 'all' ? '' : split, tag, q, sort: sort === 'oldest' ? '' : sort }), {
      signal: controller.signal,
    });
    if (generation !== state.generation) return;
    for (const sample of page.samples) {
      const i = state.loaded++;
      ids.set(i, sample.id);
      cats.set(i, categoryId(sample.category));
      splits.set(i, sample.split === 'test' ? 1 : 0);
    }
    state.cursor = page.nextCursor;
    if (!page.nextCursor) {
      state.done = true;
      state.exact = true;
      state.total = state.loaded;
    } else if (state.total < state.loaded + 1) {
      state.total = state.loaded + 1;
    }
  }

  /** Lists pages until the sample at `index` is listed (or the listing ends). */
  async function ensure(index) {
    const generation = state.generation;
    while (index >= state.loaded && !state.done && generation === state.generation) {
      if (!state.loading) {
        // A page of an earlier listing (before a filter changed) must not clear this one's.
        const loading = loadPage().finally(() => {
          if (state.loading === loading) state.loading = null;
        });
        state.loading = loading;
      }
      try {
        await state.loading;
        state.error = null;
      } catch (error) {
        if (error.name === 'AbortError') return undefined;
        state.error = error;
        render();
        throw error;
      }
      schedule();
    }
    return generation === state.generation ? sampleAt(index) : undefined;
  }

  // ---- layout

  function measure() {
    const width = viewport.clientWidth;
    const min = width < 480 ? MIN_CELL_NARROW : MIN_CELL;
    state.cols = Math.max(1, Math.floor((width + GAP) / (min + GAP)));
    state.cellWidth = (width - GAP * (state.cols - 1)) / state.cols;
    state.rowHeight = Math.round(state.cellWidth + CAPTION + GAP);
  }

  const rowCount = () => Math.ceil(state.total / state.cols);

  function visibleRows() {
    const first = Math.floor(viewport.scrollTop / state.rowHeight);
    const count = Math.ceil(viewport.clientHeight / state.rowHeight);
    return { first, last: first + count - 1, count: Math.max(1, count) };
  }

  function schedule() {
    if (state.frame) return;
    state.frame = requestAnimationFrame(() => {
      state.frame = 0;
      render();
    });
  }

  function render() {
    measure();
    const rows = rowCount();
    grid.style.height = `${rows * state.rowHeight}px`;
    grid.setAttribute('aria-rowcount', String(rows));
    grid.setAttribute('aria-colcount', String(state.cols));
    emptyNote.hidden = !(state.done && state.total === 0);
    emptyNote.textContent = state.filter.category || state.filter.split !== 'all' || state.filter.tag || state.filter.q ? 'No samples match these filters.' : 'No samples yet.';
    const { first, last } = visibleRows();
    const from = Math.max(0, first - OVERSCAN);
    const to = Math.min(rows - 1, last + OVERSCAN);
    for (const [row, element] of state.rendered) {
      if (row < from || row > to || element.dataset.cols !== String(state.cols) || element.dataset.stale) {
        dropRow(element);
        state.rendered.delete(row);
      }
    }
    let missing = false;
    for (let row = from; row <= to; row++) {
      let element = state.rendered.get(row);
      const complete = element && element.dataset.complete === 'true';
      if (element && !complete) {
        dropRow(element);
        element = undefined;
      }
      if (!element) {
        element = makeRow(row);
        state.rendered.set(row, element);
        grid.append(element);
      }
      if (element.dataset.complete !== 'true') missing = true;
    }
    const tabbable = grid.querySelector(`[data-index="${state.active}"]`) ?? grid.querySelector('[role="gridcell"][data-index]');
    for (const cell of grid.querySelectorAll('[role="gridcell"][tabindex="0"]')) if (cell !== tabbable) cell.tabIndex = -1;
    if (tabbable) tabbable.tabIndex = 0;
    if (missing && !state.done && !state.error) ensure(Math.min(state.total - 1, (to + 1) * state.cols - 1)).catch(() => undefined);
    pumpThumbs();
    updateStatus();
  }

  function makeRow(row) {
    const element = h('div', { role: 'row', class: 'vrow', 'aria-rowindex': String(row + 1) });
    element.style.transform = `translateY(${row * state.rowHeight}px)`;
    element.style.gridTemplateColumns = `repeat(${state.cols}, minmax(0, 1fr))`;
    element.style.height = `${state.rowHeight - GAP}px`;
    element.dataset.cols = String(state.cols);
    let complete = true;
    for (let col = 0; col < state.cols; col++) {
      const index = row * state.cols + col;
      if (index >= state.total) break;
      const sample = sampleAt(index);
      if (!sample) complete = false;
      element.append(sample ? makeCell(index, sample, col) : h('div', { role: 'gridcell', class: 'cell pending', 'aria-colindex': String(col + 1), text: state.error ? 'Not listed' : 'Loading…' }));
    }
    element.dataset.complete = String(complete);
    return element;
  }

  function isSelected(id) {
    return selection.all ? !selection.except.has(id) : selection.ids.has(id);
  }

  function makeCell(index, sample, col) {
    const img = h('img', { alt: '', decoding: 'async', width: String(THUMB_SIZE), height: String(THUMB_SIZE) });
    img.addEventListener('load', () => {
      if (img.naturalWidth <= 64 && img.naturalHeight <= 64) img.classList.add('pixelated');
    });
    const check = h('input', { type: 'checkbox', class: 'cell-check', tabindex: '-1', 'aria-label': `Select sample #${sample.id}` });
    const selected = isSelected(sample.id);
    check.checked = selected;
    const cell = h(
      'div',
      {
        role: 'gridcell',
        class: 'cell',
        tabindex: '-1',
        'aria-colindex': String(col + 1),
        'aria-selected': String(selected),
        'data-index': String(index),
        'data-sample-id': String(sample.id),
        'data-category': sample.category,
      },
      h('span', { class: 'thumb-frame' }, img),
      h('span', { class: 'thumb-caption' }, h('span', { class: 'thumb-category', text: sample.category }), h('span', { class: 'split-tag', text: `#${sample.id} · ${sample.split}` })),
      check,
    );
    const url = urls.get(sample.id);
    if (url) {
      urls.delete(sample.id);
      urls.set(sample.id, url);
      img.src = url;
    } else {
      cell.dataset.thumb = 'wanted';
    }
    return cell;
  }

  function dropRow(element) {
    for (const cell of element.querySelectorAll('[data-thumb="loading"]')) cell._abort?.abort();
    element.remove();
  }

  // ---- previews

  function pumpThumbs() {
    thumbQueue.length = 0;
    thumbQueue.push(...grid.querySelectorAll('[data-thumb="wanted"]'));
    while (thumbsActive < THUMB_CONCURRENCY && thumbQueue.length > 0) loadThumb(thumbQueue.shift());
  }

  async function loadThumb(cell) {
    if (!cell.isConnected || cell.dataset.thumb !== 'wanted') return;
    const id = Number(cell.dataset.sampleId);
    cell.dataset.thumb = 'loading';
    const abort = new AbortController();
    cell._abort = abort;
    const onPageAbort = () => abort.abort();
    controller.signal.addEventListener('abort', onPageAbort, { once: true });
    thumbsActive++;
    try {
      const url = await thumbnailUrl(name, id, THUMB_SIZE, abort.signal);
      keepUrl(id, url);
      if (cell.isConnected) cell.querySelector('img').src = url;
      cell.dataset.thumb = 'done';
    } catch (error) {
      if (error.name !== 'AbortError') {
        cell.classList.add('broken');
        cell.dataset.thumb = 'failed';
      }
    } finally {
      controller.signal.removeEventListener('abort', onPageAbort);
      thumbsActive--;
      if (!controller.signal.aborted) {
        const next = thumbQueue.shift();
        if (next) loadThumb(next);
      }
    }
  }

  function keepUrl(id, url) {
    urls.set(id, url);
    while (urls.size > KEPT_URLS) {
      const [oldId, oldUrl] = urls.entries().next().value;
      urls.delete(oldId);
      // A preview still on screen keeps showing its decoded image after the revoke.
      URL.revokeObjectURL(oldUrl);
    }
  }

  // ---- status, paging, jumping

  const status = h('p', { class: 'muted small grid-status' });
  const live = h('p', { class: 'visually-hidden', 'aria-live': 'polite' });

  function updateStatus() {
    if (state.total === 0) {
      status.textContent = state.done ? 'No samples' : 'Listing…';
      return;
    }
    const { first, count } = visibleRows();
    const start = Math.min(state.total, first * state.cols + 1);
    const end = Math.min(state.total, (first + count) * state.cols);
    const pages = Math.max(1, Math.ceil(rowCount() / count));
    const pageNumber = Math.min(pages, Math.floor(first / count) + 1);
    status.textContent = `${fmt(start)}–${fmt(end)} of ${fmt(state.total)} · page ${fmt(pageNumber)} of ${fmt(pages)}`;
    pageState.first.disabled = pageState.previous.disabled = first === 0;
    pageState.next.disabled = pageState.last.disabled = end >= state.total;
  }

  function scrollToRow(row) {
    viewport.scrollTop = Math.max(0, row * state.rowHeight);
    render();
  }

  function scrollIntoView(index) {
    const row = Math.floor(index / state.cols);
    const top = row * state.rowHeight;
    if (top < viewport.scrollTop) viewport.scrollTop = top;
    else if (top + state.rowHeight - GAP > viewport.scrollTop + viewport.clientHeight) viewport.scrollTop = top + state.rowHeight - viewport.clientHeight;
  }

  /** Moves the active cell to `index`, lists up to it, scrolls it into view and focuses it. */
  async function moveTo(index, { focus = true } = {}) {
    if (state.total === 0) return undefined;
    const target = Math.max(0, Math.min(state.total - 1, index));
    state.active = target;
    scrollIntoView(target);
    render();
    let sample;
    try {
      sample = await ensure(target);
    } catch {
      return undefined;
    }
    if (!sample && state.done) {
      state.active = Math.max(0, state.total - 1);
      scrollIntoView(state.active);
    }
    render();
    if (focus) grid.querySelector(`[data-index="${state.active}"]`)?.focus({ preventScroll: true });
    return sampleAt(state.active);
  }

  const pageState = {
    first: h('button', { type: 'button', class: 'button small', text: 'First' }),
    previous: h('button', { type: 'button', class: 'button small', text: 'Previous page' }),
    next: h('button', { type: 'button', class: 'button small', text: 'Next page' }),
    last: h('button', { type: 'button', class: 'button small', text: 'Last' }),
  };
  pageState.first.addEventListener('click', () => scrollToRow(0));
  pageState.previous.addEventListener('click', () => scrollToRow(visibleRows().first - visibleRows().count));
  pageState.next.addEventListener('click', () => scrollToRow(visibleRows().first + visibleRows().count));
  pageState.last.addEventListener('click', () => scrollToRow(rowCount()));
  const jumpInput = h('input', { type: 'number', min: '1', inputmode: 'numeric', name: 'position', id: `jump-${name}`, class: 'jump-input' });
  const jumpForm = h(
    'form',
    { class: 'jump', novalidate: true },
    h('label', { for: jumpInput.id, text: 'Go to position' }),
    jumpInput,
    h('button', { type: 'submit', class: 'button small', text: 'Go' }),
  );
  jumpForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const position = Number(jumpInput.value);
    if (!Number.isInteger(position) || position < 1) {
      live.textContent = `Enter a position from 1 to ${fmt(state.total)}.`;
      jumpInput.setAttribute('aria-invalid', 'true');
      return;
    }
    jumpInput.removeAttribute('aria-invalid');
    const sample = await moveTo(position - 1);
    if (sample) live.textContent = `Position ${fmt(state.active + 1)}: sample #${sample.id}.`;
  });
  const pager = h('div', { class: 'pager' }, h('div', { class: 'pager-buttons' }, pageState.first, pageState.previous, pageState.next, pageState.last), jumpForm, status, live);

  // ---- input

  viewport.addEventListener('scroll', schedule, { passive: true });
  const resizeObserver = new ResizeObserver(() => schedule());
  resizeObserver.observe(viewport);

  function toggle(id, on = !isSelected(id)) {
    if (selection.all) {
      if (on) selection.except.delete(id);
      else selection.except.add(id);
    } else if (on) selection.ids.add(id);
    else selection.ids.delete(id);
  }

  async function selectRange(from, to) {
    const [a, b] = from <= to ? [from, to] : [to, from];
    await ensure(b);
    for (let i = a; i <= b && i < state.loaded; i++) toggle(ids.get(i), true);
    selectionChanged();
  }

  function selectionChanged() {
    for (const cell of grid.querySelectorAll('[role="gridcell"][data-sample-id]')) {
      const on = isSelected(Number(cell.dataset.sampleId));
      cell.setAttribute('aria-selected', String(on));
      cell.querySelector('.cell-check').checked = on;
    }
    onSelection?.(selectionSummary());
  }

  function selectionSummary() {
    const count = selection.all ? Math.max(0, state.total - selection.except.size) : selection.ids.size;
    return { count, all: selection.all, exact: !selection.all || state.exact, except: selection.except.size, filter: { ...state.filter } };
  }

  /**
   * What a bulk action sends for the selection: `{filter}` when every match is selected (the
   * server applies the action to what the filter matches), otherwise `{ids}`. Every match but a
   * few: the listing is read to its end and the ids sent.
   */
  async function selectionTarget() {
    if (selection.all && selection.except.size === 0) {
      const filter = {};
      for (const field of ['category', 'split', 'tag', 'q']) {
        const value = state.filter[field];
        if (value && value !== 'all') filter[field] = value;
      }
      return { filter };
    }
    if (selection.all) {
      await ensure(Number.MAX_SAFE_INTEGER);
      const chosen = [];
      for (let i = 0; i < state.loaded; i++) if (!selection.except.has(ids.get(i))) chosen.push(ids.get(i));
      return { ids: chosen };
    }
    return { ids: [...selection.ids] };
  }

  grid.addEventListener('click', (event) => {
    const cell = event.target.closest('[role="gridcell"][data-index]');
    if (!cell) return;
    const index = Number(cell.dataset.index);
    const id = Number(cell.dataset.sampleId);
    const onCheck = event.target.classList.contains('cell-check');
    if (event.shiftKey) {
      event.preventDefault();
      selectRange(state.anchor, index);
    } else if (onCheck || event.ctrlKey || event.metaKey) {
      if (!onCheck) event.preventDefault();
      toggle(id);
      state.anchor = index;
      selectionChanged();
    } else {
      state.active = index;
      state.anchor = index;
      render();
      onOpen?.(id);
      return;
    }
    state.active = index;
    render();
    cell.focus({ preventScroll: true });
  });

  grid.addEventListener('keydown', (event) => {
    const { cols } = state;
    const page = visibleRows().count * cols;
    const rowStart = state.active - (state.active % cols);
    const moves = {
      ArrowRight: state.active + 1,
      ArrowLeft: state.active - 1,
      ArrowDown: state.active + cols,
      ArrowUp: state.active - cols,
      PageDown: state.active + page,
      PageUp: state.active - page,
      Home: event.ctrlKey || event.metaKey ? 0 : rowStart,
      End: event.ctrlKey || event.metaKey ? state.total - 1 : Math.min(state.total - 1, rowStart + cols - 1),
    };
    if (event.key in moves) {
      event.preventDefault();
      const target = moves[event.key];
      if (target < 0 || target >= state.total) return;
      const from = state.active;
      moveTo(target).then(() => {
        if (event.shiftKey) selectRange(from, state.active);
      });
    } else if (event.key === 'Enter') {
      const sample = sampleAt(state.active);
      if (sample) {
        event.preventDefault();
        onOpen?.(sample.id);
      }
    } else if (event.key === ' ') {
      const sample = sampleAt(state.active);
      if (sample) {
        event.preventDefault();
        if (event.shiftKey) selectRange(state.anchor, state.active);
        else {
          toggle(sample.id);
          state.anchor = state.active;
          selectionChanged();
        }
      }
    } else if (event.key === 'a' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      selectAll();
    } else if (event.key === 'Escape' && selectionSummary().count > 0) {
      event.preventDefault();
      clearSelection();
    }
  });

  grid.addEventListener('focusin', (event) => {
    const cell = event.target.closest('[role="gridcell"][data-index]');
    if (cell) state.active = Number(cell.dataset.index);
  });

  function selectAll() {
    selection.all = true;
    selection.ids.clear();
    selection.except.clear();
    selectionChanged();
  }

  function clearSelection() {
    selection.all = false;
    selection.ids.clear();
    selection.except.clear();
    selectionChanged();
  }

  // ---- the grid's life

  function reset(filter, total) {
    state.generation++;
    state.filter = { ...filter };
    state.total = total ?? 0;
    state.exact = total !== undefined;
    state.loaded = 0;
    state.cursor = undefined;
    state.done = false;
    state.loading = null;
    state.error = null;
    state.active = 0;
    state.anchor = 0;
    for (const element of state.rendered.values()) dropRow(element);
    state.rendered.clear();
    viewport.scrollTop = 0;
    selection.all = false;
    selection.ids.clear();
    selection.except.clear();
    onSelection?.(selectionSummary());
    const listing = ensure(0);
    render();
    return listing.then(() => {
      live.textContent = `${fmt(state.total)} samples.`;
    });
  }

  /** The stats changed (an upload): a new total where the listing has not reached the end. */
  function setTotal(total) {
    if (!state.done && total !== undefined && total > state.loaded) {
      state.total = total;
      schedule();
    }
  }

  function removeId(id) {
    const index = indexOfId(id);
    if (index < 0) return;
    ids.remove(index, state.loaded);
    cats.remove(index, state.loaded);
    splits.remove(index, state.loaded);
    state.loaded--;
    state.total = Math.max(state.loaded, state.total - 1);
    selection.ids.delete(id);
    if (state.active >= state.total) state.active = Math.max(0, state.total - 1);
    for (const element of state.rendered.values()) element.dataset.stale = 'true';
    render();
  }

  function updateSample(sample) {
    const index = indexOfId(sample.id);
    if (index < 0) return;
    if (state.filter.category && state.filter.category !== sample.category) {
      removeId(sample.id);
      return;
    }
    cats.set(index, categoryId(sample.category));
    for (const element of state.rendered.values()) element.dataset.stale = 'true';
    render();
  }

  function destroy() {
    controller.abort();
    resizeObserver.disconnect();
    cancelAnimationFrame(state.frame);
    for (const url of urls.values()) URL.revokeObjectURL(url);
    urls.clear();
  }

  return {
    element: h('div', { class: 'grid-wrap' }, pager, emptyNote, viewport),
    reset,
    setTotal,
    ensure,
    sampleAt,
    moveTo,
    removeId,
    updateSample,
    selectAll,
    clearSelection,
    selection: selectionSummary,
    selectionTarget,
    focusActive: () => moveTo(state.active),
    get active() {
      return state.active;
    },
    /** Whether the total is exact (counted by the stats, or listed to the end). */
    get exact() {
      return state.exact;
    },
    get total() {
      return state.total;
    },
    destroy,
  };
}
