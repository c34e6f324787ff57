// Curation on a dataset's view: actions on the grid's selection (relabel, tag, untag, delete) with
// one request each, the result of the last action with its undo, and the dataset's history.
import { apiJson, paths, session } from './api.js';
import { clear, confirmDialog, fmt, fmtTime, h, newId, plural, showError, toast } from './dom.js';

/** Tag names typed in one box: separated by commas (a name may hold spaces). */
export const parseTags = (text) => [...new Set(text.split(',').map((t) => t.trim()).filter(Boolean))];

const ACTION_NOUNS = { relabel: 'the relabel', tag: 'the tagging', untag: 'the untagging', delete: 'the delete' };

const FIELD_WORDS = { addTags: 'added tags', removeTags: 'removed tags', tags: 'tags set to', filename: 'filename', metadata: 'metadata' };

function detailValue(value) {
  if (Array.isArray(value)) return value.join(', ') || '—';
  if (value && typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** What an audit entry changed, in words. */
export function auditText(entry) {
  const d = entry.detail ?? {};
  switch (entry.action) {
    case 'add':
      return `added in ${d.category}`;
    case 'relabel':
      return `relabelled ${d.from} → ${d.to}`;
    case 'delete':
      return `deleted (was ${d.category})`;
    case 'restore':
      return `restored from #${d.from}${d.category ? ` in ${d.category}` : ''}`;
    default:
      return Object.entries(d).map(([k, v]) => `${FIELD_WORDS[k] ?? k} ${detailValue(v)}`).join('; ') || entry.action;
  }
}

/** An audit table (who, when, what) with an "Older entries" button following the cursor. */
export function auditList({ load, showSample = true, caption }) {
  const body = h('tbody');
  const table = h(
    'table',
    { class: 'table audit-table' },
    caption ? h('caption', { class: 'visually-hidden', text: caption }) : null,
    h('thead', {}, h('tr', {}, ['When', 'Who', showSample ? 'Sample' : null, 'Change', 'Revision'].filter(Boolean).map((text) => h('th', { scope: 'col', text })))),
    body,
  );
  const errors = h('div', { class: 'error-slot' });
  const empty = h('p', { class: 'empty', hidden: true, text: 'No changes recorded yet.' });
  const more = h('button', { type: 'button', class: 'button small', hidden: true, text: 'Older entries' });
  let cursor;
  let sequence = 0;

  function row(entry) {
    return h(
      'tr',
      { 'data-audit-action': entry.action, 'data-sample-id': String(entry.sampleId) },
      h('td', {}, h('time', { datetime: entry.at, text: fmtTime(entry.at) })),
      h('td', { text: entry.actor?.name ?? '—' }),
      showSample ? h('td', { text: `#${entry.sampleId}` }) : null,
      h('td', { text: auditText(entry) + (entry.bulkId ? ` (action ${entry.bulkId})` : '') }),
      h('td', { class: 'num', text: fmt(entry.revision) }),
    );
  }

  async function page(first) {
    const mine = first ? ++sequence : sequence;
    if (first) cursor = undefined;
    more.disabled = true;
    try {
      const answer = await load(cursor);
      if (mine !== sequence) return;
      if (first) clear(body);
      body.append(...answer.entries.map(row));
      cursor = answer.nextCursor;
      more.hidden = !cursor;
      empty.hidden = body.children.length > 0;
      table.hidden = body.children.length === 0;
      showError(errors, null);
    } catch (error) {
      if (error.name !== 'AbortError' && mine === sequence) showError(errors, error, 'Could not read the history');
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener('click', () => page(false));

  return { element: h('div', { class: 'audit' }, errors, empty, table, h('div', { class: 'actions' }, more)), refresh: () => page(true) };
}

/** The dataset's audit log as a card, newest first, 25 at a time. */
export function historyCard({ name, signal, section }) {
  const list = auditList({ load: (cursor) => apiJson(paths.audit(name, { limit: 25, cursor }), { signal }), caption: `History of ${name}` });
  const card = section('History', { class: 'card history-card' }, h('p', { class: 'muted small', text: 'Who added, relabelled, deleted, tagged or restored which sample, and when; newest first.' }), list.element);
  // It scrolls (a long log, a narrow screen): focusable, so that a keyboard scrolls it too.
  Object.assign(list.element, { tabIndex: 0 });
  list.element.setAttribute('role', 'region');
  list.element.setAttribute('aria-label', 'Audit log');
  list.refresh();
  return { element: card, refresh: list.refresh };
}

/**
 * The actions on a selection: one request per action (the ids, or the filter when every match
 * is selected), the result counted by status, and an Undo for the last action.
 * `target()` → {ids} | {filter}; `count()` → how many are selected; `done()` after a change.
 */
export function bulkActions({ name, datalistId, target, count, done }) {
  const relabelInput = h('input', { id: newId('bulk-category'), name: 'category', list: datalistId, autocomplete: 'off', spellcheck: 'false', class: 'bulk-input' });
  const relabelButton = h('button', { type: 'submit', class: 'button small primary', text: 'Relabel' });
  const relabelForm = h('form', { class: 'bulk-group', novalidate: true }, h('label', { for: relabelInput.id, text: 'Relabel to' }), relabelInput, relabelButton);
  const tagInput = h('input', { id: newId('bulk-tags'), name: 'tags', autocomplete: 'off', spellcheck: 'false', class: 'bulk-input', placeholder: 'checked, blurry' });
  const tagButton = h('button', { type: 'submit', class: 'button small', text: 'Add tags' });
  const untagButton = h('button', { type: 'button', class: 'button small', text: 'Remove tags' });
  const tagForm = h('form', { class: 'bulk-group', novalidate: true }, h('label', { for: tagInput.id, text: 'Tags to add or remove' }), tagInput, tagButton, untagButton);
  const deleteButton = h('button', { type: 'button', class: 'button small danger', text: 'Delete…' });
  const errors = h('div', { class: 'error-slot' });
  const controls = h('div', { class: 'bulk-actions', role: 'group', 'aria-label': 'Actions on the selection' }, relabelForm, tagForm, deleteButton);
  relabelForm.hidden = tagForm.hidden = !session.can('write');
  deleteButton.hidden = !session.can('admin');
  controls.hidden = !session.can('write');

  const resultText = h('p', { class: 'bulk-summary' });
  const skippedList = h('ul', { class: 'skipped small', hidden: true });
  const undoButton = h('button', { type: 'button', class: 'button small', text: 'Undo' });
  const result = h('div', { class: 'bulk-result', role: 'status', hidden: true }, h('div', { class: 'bulk-result-line' }, resultText, undoButton), skippedList);
  let last = null;
  let busy = false;

  function setBusy(on) {
    busy = on;
    for (const button of [relabelButton, tagButton, untagButton, deleteButton, undoButton]) button.disabled = on;
  }

  function tally(results) {
    const counts = { changed: 0, unchanged: 0, not_found: 0, restored: 0, skipped: 0 };
    for (const r of results) counts[r.status] = (counts[r.status] ?? 0) + 1;
    return counts;
  }

  function showResult(outcome, words) {
    const counts = tally(outcome.results);
    const parts = [`${fmt(counts.changed)} changed`, `${fmt(counts.unchanged)} unchanged`, `${fmt(counts.not_found)} not found`];
    if (counts.restored) parts.push(`${fmt(counts.restored)} restored`);
    if (counts.skipped) parts.push(`${fmt(counts.skipped)} skipped`);
    resultText.textContent = `${words}: ${parts.join(', ')} · revision ${fmt(outcome.action.revision)}.`;
    for (const [status, n] of Object.entries(counts)) result.dataset[status === 'not_found' ? 'notFound' : status] = String(n);
    result.dataset.action = outcome.action.action;
    result.dataset.revision = String(outcome.action.revision);
    const skipped = outcome.results.filter((r) => r.status === 'skipped');
    clear(skippedList).append(...skipped.slice(0, 20).map((r) => h('li', { text: `#${r.id}: ${r.reason ?? 'skipped'}` })));
    if (skipped.length > 20) skippedList.append(h('li', { class: 'muted', text: `and ${plural(skipped.length - 20, 'other')}` }));
    skippedList.hidden = skipped.length === 0;
    // Only the last action can be undone, and an undo not again; a delete's undo needs the admin role.
    last = outcome.action.action === 'undo' ? null : outcome.action;
    undoButton.hidden = !last || !session.can(last.action === 'delete' ? 'admin' : 'write');
    result.hidden = false;
  }

  async function run(body, words) {
    if (busy) return;
    showError(errors, null);
    setBusy(true);
    try {
      const selected = await target();
      const outcome = await apiJson(paths.actions(name), { method: 'POST', json: { ...body, ...selected } });
      showResult(outcome, words);
      toast(`${words} ${plural(outcome.action.changed, 'sample')}.`);
      await done?.(outcome);
    } catch (error) {
      showError(errors, error, `${words} failed`);
    } finally {
      setBusy(false);
    }
  }

  relabelForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const category = relabelInput.value.trim();
    if (!category) {
      showError(errors, 'Choose or type a category to move the selection to.');
      relabelInput.focus();
      return;
    }
    run({ action: 'relabel', category }, `Relabelled to ${category}`);
  });

  function tagAction(action) {
    const tags = parseTags(tagInput.value);
    if (tags.length === 0) {
      showError(errors, 'Type one or more tags, separated by commas.');
      tagInput.focus();
      return;
    }
    run({ action, tags }, action === 'tag' ? `Tagged ${tags.join(', ')}` : `Untagged ${tags.join(', ')}`);
  }
  tagForm.addEventListener('submit', (event) => {
    event.preventDefault();
    tagAction('tag');
  });
  untagButton.addEventListener('click', () => tagAction('untag'));

  deleteButton.addEventListener('click', async () => {
    const n = count();
    const ok = await confirmDialog({
      title: `Delete ${plural(n, 'sample')}?`,
      message: 'They leave the dataset now, in one revision; batches pinned to an earlier revision still see them. Undo brings them back as new samples.',
      confirm: 'Delete',
      danger: true,
    });
    if (!ok) {
      deleteButton.focus();
      return;
    }
    await run({ action: 'delete' }, 'Deleted');
  });

  undoButton.addEventListener('click', async () => {
    if (!last || busy) return;
    showError(errors, null);
    setBusy(true);
    try {
      const outcome = await apiJson(paths.undo(name, last.id), { method: 'POST' });
      showResult(outcome, `Undid ${ACTION_NOUNS[last.action] ?? last.action}`);
      toast('Undone.');
      await done?.(outcome);
    } catch (error) {
      showError(errors, error, 'Undo failed');
    } finally {
      setBusy(false);
    }
  });

  return { controls: h('div', { class: 'bulk' }, controls, errors), result };
}
