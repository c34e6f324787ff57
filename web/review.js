// "Label review" on a dataset's page: the samples a trainer's feedback (and near-duplicates with
// other labels) point at as likely mislabels, one at a time, best first, each decided with one
// key: C confirm the label, R relabel to the suggested class, D delete (admin), ← → skip.
import { apiJson, paths, session, thumbnailUrl } from './api.js';
import { clear, fmt, h, newId, plural, showError, toast } from './dom.js';

const PAGE = 50;

const REASONS = {
  high_loss: (r) => `High loss ${r.loss.toFixed(2)} (${r.z.toFixed(1)} deviations above the dataset's median; above ${Math.round(r.percentile)}% of losses)`,
  confident_disagreement: (r) => `The model gives ${r.suggested} ${pct(r.suggestedProbability)}, the label ${pct(r.labelProbability)}`,
  predicted_other: (r) => `Predicted ${r.suggested}`,
  duplicate_conflict: (r) => `${r.others} of its ${r.groupSize - 1} near-duplicates are labelled otherwise (mostly ${r.suggested})`,
};

const pct = (p) => `${Math.round(p * 100)}%`;

/** The card; `signal` ends its requests when the view goes. */
export function reviewCard(name, signal) {
  const titleId = newId('section');
  const summary = h('p', { class: 'muted small review-summary', 'aria-live': 'polite', text: 'Loading the review queue…' });
  const errors = h('div', { class: 'error-slot' });
  const preview = h('img', { class: 'review-preview', alt: '', width: '256', height: '256', hidden: true });
  const facts = h('dl', { class: 'review-facts' });
  const reasons = h('ul', { class: 'review-reasons', 'aria-label': 'Reasons' });
  const canWrite = session.can('write');
  const canDelete = session.can('admin');
  const button = (key, text, onclick, extra = {}) =>
    h('button', { type: 'button', class: 'button', 'aria-keyshortcuts': key, onclick, ...extra }, h('kbd', { text: key.replace('Arrow', '') === 'Left' ? '←' : key === 'ArrowRight' ? '→' : key }), ` ${text}`);
  const confirmButton = button('C', 'Confirm label', () => decide('confirm'), { hidden: !canWrite, 'data-decision': 'confirm' });
  const relabelButton = button('R', 'Relabel to suggestion', () => decide('relabel'), { hidden: !canWrite, class: 'button primary', 'data-decision': 'relabel' });
  const deleteButton = button('D', 'Delete', () => decide('delete'), { hidden: !canDelete, class: 'button danger', 'data-decision': 'delete' });
  const prevButton = button('ArrowLeft', 'Back', () => move(-1));
  const nextButton = button('ArrowRight', 'Skip', () => move(1));
  const panel = h(
    'div',
    {
      class: 'review-panel',
      tabindex: '0',
      role: 'group',
      'aria-label': 'Sample under review',
      'aria-keyshortcuts': [canWrite ? 'C R' : '', canDelete ? 'D' : '', 'ArrowLeft ArrowRight'].filter(Boolean).join(' '),
      hidden: true,
    },
    h('div', { class: 'review-sample' }, preview, h('div', {}, facts, reasons)),
    h('div', { class: 'actions review-actions' }, confirmButton, relabelButton, deleteButton, prevButton, nextButton),
    h('p', { class: 'muted small', text: `Keys here: ${canWrite ? 'C confirm, R relabel to the suggestion, ' : ''}${canDelete ? 'D delete, ' : ''}← → back and skip.` }),
  );

  let items = [];
  let index = 0;
  let total = 0;
  let cursor;
  let busy = false;
  let previewUrl;

  async function load(reset) {
    showError(errors, null);
    if (reset) {
      items = [];
      index = 0;
      cursor = undefined;
    }
    try {
      const body = await apiJson(`${paths.dataset(name)}/review?limit=${PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { signal });
      items.push(...body.items);
      total = body.total;
      cursor = body.nextCursor;
      render();
    } catch (error) {
      if (error.name === 'AbortError') return;
      summary.textContent = '';
      showError(errors, error);
    }
  }

  function render() {
    const item = items[index];
    if (!item) {
      panel.hidden = true;
      summary.textContent = total === 0 ? 'Nothing to review: no sample is pointed at as a likely mislabel. A trainer posts its losses and probabilities to POST …/feedback.' : 'End of the queue.';
      return;
    }
    panel.hidden = false;
    summary.textContent = `${plural(total, 'sample')} to review. Sample ${fmt(index + 1)} of ${fmt(items.length)}${cursor ? '+' : ''}: #${item.id}.`;
    panel.dataset.sampleId = String(item.id);
    clear(facts).append(
      h('dt', { text: 'Sample' }),
      h('dd', { text: `#${item.id}` }),
      h('dt', { text: 'Label' }),
      h('dd', { class: 'review-label', text: item.category }),
      h('dt', { text: 'Suggested' }),
      h('dd', { class: 'review-suggested', text: item.suggested ?? '—' }),
      h('dt', { text: 'Score' }),
      h('dd', { text: item.score.toFixed(2) }),
    );
    clear(reasons).append(...item.reasons.map((r) => h('li', { 'data-kind': r.kind, text: (REASONS[r.kind] ?? (() => r.kind))(r) })));
    relabelButton.disabled = item.suggested === undefined;
    prevButton.disabled = index === 0;
    nextButton.disabled = index + 1 >= items.length && !cursor;
    preview.alt = `Sample #${item.id}, labelled ${item.category}`;
    showPreview(item.id);
  }

  async function showPreview(id) {
    try {
      const url = await thumbnailUrl(name, id, 256, signal);
      if (items[index]?.id !== id) return URL.revokeObjectURL(url);
      if (previewUrl) URL.revokeObjectURL(previewUrl);
      previewUrl = url;
      preview.src = url;
      preview.hidden = false;
    } catch (error) {
      if (error.name !== 'AbortError') preview.hidden = true;
    }
  }

  async function move(step) {
    const next = index + step;
    if (next < 0) return;
    if (next >= items.length) {
      if (!cursor) return;
      await load(false);
      if (next >= items.length) return;
    }
    index = next;
    render();
  }

  async function decide(decision) {
    const item = items[index];
    if (!item || busy) return;
    if (decision === 'relabel' && item.suggested === undefined) return;
    busy = true;
    showError(errors, null);
    try {
      await apiJson(`${paths.dataset(name)}/review/${item.id}`, { method: 'POST', json: { decision }, signal });
      const done = { confirm: `#${item.id} confirmed as ${item.category}`, relabel: `#${item.id} relabelled ${item.category} → ${item.suggested}`, delete: `#${item.id} deleted` }[decision];
      toast(done);
      // A decision may take others out too (near-duplicates no longer in conflict): the queue is
      // read again, and the sample after this one shown.
      const nextId = items[index + 1]?.id;
      const at = index;
      await load(true);
      const found = items.findIndex((other) => other.id === nextId);
      index = found >= 0 ? found : Math.min(at, Math.max(0, items.length - 1));
      render();
    } catch (error) {
      if (error.name !== 'AbortError') showError(errors, error);
    } finally {
      busy = false;
    }
  }

  panel.addEventListener('keydown', (event) => {
    if (event.target !== panel && event.target.closest('input, select, textarea')) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key;
    let handled = true;
    if ((key === 'c' || key === 'C') && canWrite) decide('confirm');
    else if ((key === 'r' || key === 'R') && canWrite) decide('relabel');
    else if ((key === 'd' || key === 'D') && canDelete) decide('delete');
    else if (key === 'ArrowRight') move(1);
    else if (key === 'ArrowLeft') move(-1);
    else handled = false;
    if (handled) event.preventDefault();
  });
  signal?.addEventListener('abort', () => previewUrl && URL.revokeObjectURL(previewUrl));

  load(true);
  return h(
    'section',
    { class: 'card review-card', 'aria-labelledby': titleId },
    h('h2', { id: titleId, text: 'Label review' }),
    summary,
    errors,
    panel,
    h('div', { class: 'actions center' }, h('button', { type: 'button', class: 'button', text: 'Reload queue', onclick: () => load(true) })),
  );
}
