// "Know your data" on a dataset's page: near-duplicate groups and the leakage report (from the
// perceptual hashes), and what changed between two revisions, class by class.
import { apiJson, paths } from './api.js';
import { clear, fmt, h, newId, plural, showError } from './dom.js';

function field(label, control) {
  control.id = control.id || newId('field');
  return h('div', { class: 'field' }, h('label', { for: control.id, text: label }), control);
}

function memberChip(member) {
  return h('li', { class: 'member', 'data-sample-id': member.id }, `#${member.id} ${member.category} · ${member.split}`, member.distance ? h('span', { class: 'muted', text: ` (${member.distance} bits)` }) : null);
}

function groupItem(group) {
  const badges = [];
  if (group.identical) badges.push(h('span', { class: 'badge', text: 'identical pixels' }));
  if (group.straddlesSplit) badges.push(h('span', { class: 'badge warn', text: 'train and test' }));
  if (group.categories) badges.push(h('span', { class: 'badge warn', text: `labels: ${group.categories.join(', ')}` }));
  return h('li', { class: 'group' }, h('ul', { class: 'members' }, group.members.map(memberChip)), badges.length ? h('p', { class: 'badges' }, badges) : null);
}

/** The card; `signal` ends its requests when the view goes. */
export function insightsCard(name, signal) {
  const titleId = newId('section');
  const distance = h('input', { type: 'number', name: 'distance', min: '0', max: '12', step: '1', value: '4', inputmode: 'numeric' });
  const report = h('select', { name: 'report' }, h('option', { value: 'duplicates', text: 'Near-duplicates' }), h('option', { value: 'leakage', text: 'Leakage' }));
  const findButton = h('button', { type: 'submit', class: 'button primary', text: 'Find' });
  const groupErrors = h('div', { class: 'error-slot' });
  const groupSummary = h('p', { class: 'muted small group-summary', 'aria-live': 'polite' });
  const groupList = h('ol', { class: 'groups', 'aria-label': 'Groups' });
  const moreButton = h('button', { type: 'button', class: 'button', hidden: true, text: 'More groups' });
  let cursor;

  async function loadGroups(reset) {
    showError(groupErrors, null);
    if (reset) {
      cursor = undefined;
      clear(groupList);
      groupSummary.textContent = 'Looking…';
    }
    try {
      const query = `distance=${encodeURIComponent(distance.value)}&limit=20${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const body = await apiJson(`${paths.dataset(name)}/${report.value}?${query}`, { signal });
      const waiting = body.unhashed ? `; ${plural(body.unhashed, 'sample')} still being hashed` : '';
      groupSummary.textContent =
        report.value === 'duplicates'
          ? `${plural(body.totals.groups, 'group')} of near-duplicates (${plural(body.totals.samples, 'sample')}) within ${body.distance} bits, at revision ${fmt(body.revision)}${waiting}.`
          : `${plural(body.splitLeaks.groups, 'group')} across the train/test split (${plural(body.splitLeaks.samples, 'sample')}), ${plural(body.labelConflicts.groups, 'group')} with conflicting labels (${plural(body.labelConflicts.samples, 'sample')}), within ${body.distance} bits${waiting}.`;
      groupList.append(...body.groups.map(groupItem));
      cursor = body.nextCursor;
      moreButton.hidden = !cursor;
    } catch (error) {
      if (error.name === 'AbortError') return;
      groupSummary.textContent = '';
      showError(groupErrors, error);
    }
  }

  const from = h('input', { type: 'number', name: 'from', min: '0', step: '1', value: '0', inputmode: 'numeric' });
  const to = h('input', { type: 'number', name: 'to', min: '0', step: '1', inputmode: 'numeric' });
  const diffErrors = h('div', { class: 'error-slot' });
  const diffSlot = h('div', { class: 'diff', 'aria-live': 'polite' });

  async function loadDiff() {
    showError(diffErrors, null);
    clear(diffSlot);
    try {
      if (to.value === '') to.value = String((await apiJson(paths.dataset(name), { signal })).revision);
      const body = await apiJson(`${paths.dataset(name)}/diff?from=${encodeURIComponent(from.value)}&to=${encodeURIComponent(to.value)}&limit=1`, { signal });
      const { added, deleted, relabelled } = body.totals;
      diffSlot.append(h('p', { class: 'diff-summary', text: `From revision ${fmt(body.from)} to ${fmt(body.to)}: ${fmt(added)} added, ${fmt(deleted)} deleted, ${fmt(relabelled)} relabelled.` }));
      if (body.categories.length > 0) {
        const head = h('tr', {}, ['Category', 'Added', 'Deleted', 'Relabelled in', 'Relabelled out'].map((text, i) => h('th', { scope: 'col', class: i ? 'num' : '', text })));
        const rows = body.categories.map((c) =>
          h('tr', { 'data-category': c.name }, h('th', { scope: 'row', text: c.name }), [c.added, c.deleted, c.relabelledIn, c.relabelledOut].map((n) => h('td', { class: 'num', text: fmt(n) }))),
        );
        diffSlot.append(h('div', { class: 'table-wrap' }, h('table', { class: 'table' }, h('thead', {}, head), h('tbody', {}, rows))));
      }
      if (body.relabels.length > 0) diffSlot.append(h('p', { class: 'muted small', text: `Relabels: ${body.relabels.map((r) => `${r.from} → ${r.to} × ${fmt(r.count)}`).join(', ')}` }));
    } catch (error) {
      if (error.name === 'AbortError') return;
      showError(diffErrors, error);
    }
  }

  moreButton.addEventListener('click', () => loadGroups(false));
  const groupForm = h(
    'form',
    { class: 'filters', onsubmit: (event) => (event.preventDefault(), loadGroups(true)) },
    field('Report', report),
    field('Distance (bits)', distance),
    h('div', { class: 'actions' }, findButton),
  );
  const diffForm = h(
    'form',
    { class: 'filters', onsubmit: (event) => (event.preventDefault(), loadDiff()) },
    field('From revision', from),
    field('To revision', to),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button', text: 'Compare' })),
  );
  return h(
    'section',
    { class: 'card insights-card', 'aria-labelledby': titleId },
    h('h2', { id: titleId, text: 'Know your data' }),
    groupForm,
    groupErrors,
    groupSummary,
    groupList,
    h('div', { class: 'actions center' }, moreButton),
    h('h3', { text: 'What changed between revisions' }),
    diffForm,
    diffErrors,
    diffSlot,
  );
}
