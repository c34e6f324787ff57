// Orders in flight and recent ones, refreshed every second while the view is shown.
import { api, apiJson, paths } from './api.js';
import { clear, confirmDialog, fmt, fmtTime, h, newId, showError, toast } from './dom.js';
import { exportsSection } from './exports.js';

const ACTIVE = new Set(['queued', 'running']);
const RECENT = 10;
const REFRESH_MS = 1000;

export function ordersView(root) {
  const controller = new AbortController();
  const errors = h('div', { class: 'error-slot' });
  const activeList = h('ul', { class: 'orders', 'aria-label': 'Orders in flight' });
  const recentList = h('ul', { class: 'orders', 'aria-label': 'Recent orders' });
  const activeEmpty = h('p', { class: 'empty', text: 'No orders in flight. A trainer places one with POST /v1/datasets/{name}/orders.' });
  const recentEmpty = h('p', { class: 'empty', text: 'No finished orders yet.' });
  const updated = h('p', { class: 'muted small' });
  const cards = new Map();
  const exportJobs = exportsSection(errors);

  const activeTitle = newId('active');
  const recentTitle = newId('recent');
  root.append(
    h('div', { class: 'page-head' }, h('h1', { tabindex: '-1', text: 'Orders' }), h('p', { class: 'muted', text: 'Large batches that trainers poll until every sample is delivered, and export jobs. This page refreshes every second.' })),
    errors,
    h('section', { class: 'card', 'aria-labelledby': activeTitle }, h('h2', { id: activeTitle, text: 'In flight' }), activeEmpty, activeList),
    h('section', { class: 'card', 'aria-labelledby': recentTitle }, h('h2', { id: recentTitle, text: 'Recent' }), recentEmpty, recentList),
    exportJobs.element,
    updated,
  );

  function card(order) {
    let entry = cards.get(order.id);
    if (!entry) {
      const status = h('span', { class: 'badge' });
      const bar = h('div', { class: 'order-bar', role: 'progressbar', 'aria-valuemin': '0' });
      const produced = h('span', { class: 'produced' });
      const delivered = h('span', { class: 'delivered' });
      bar.append(produced, delivered);
      const percent = h('span', { class: 'order-percent', 'data-field': 'percent' });
      const numbers = h('p', { class: 'order-numbers small' });
      const cancel = h('button', { type: 'button', class: 'button small danger-ghost', text: 'Cancel', 'aria-label': `Cancel order ${order.id}` });
      cancel.addEventListener('click', () => cancelOrder(order.id, cancel));
      const element = h(
        'li',
        { class: 'order', 'data-order-id': order.id },
        h(
          'div',
          { class: 'order-head' },
          h('a', { class: 'order-dataset', href: `#/datasets/${encodeURIComponent(order.dataset)}`, text: order.dataset }),
          h('code', { class: 'order-id', title: order.id, text: order.id }),
          status,
          cancel,
        ),
        h('div', { class: 'order-progress' }, bar, percent),
        numbers,
      );
      bar.setAttribute('aria-label', `Order ${order.id} delivered`);
      const ranks = h('ul', { class: 'order-ranks', 'aria-label': `Ranks of order ${order.id}` });
      element.append(ranks);
      entry = { element, status, bar, produced, delivered, percent, numbers, cancel, ranks, rankRows: [] };
      cards.set(order.id, entry);
    }
    const { size } = order;
    const share = (n) => (size > 0 ? Math.min(100, (n / size) * 100) : 0);
    const pct = Math.floor(share(order.samples.delivered));
    entry.status.className = `badge status-${order.status}`;
    entry.status.textContent = order.status;
    entry.bar.setAttribute('aria-valuemax', String(size));
    entry.bar.setAttribute('aria-valuenow', String(order.samples.delivered));
    entry.bar.setAttribute('aria-valuetext', `${fmt(order.samples.delivered)} of ${fmt(size)} delivered (${pct}%), ${fmt(order.samples.produced)} produced`);
    entry.produced.style.width = `${share(order.samples.produced)}%`;
    entry.delivered.style.width = `${share(order.samples.delivered)}%`;
    entry.percent.textContent = `${pct}%`;
    clear(entry.numbers).append(
      `Delivered ${fmt(order.samples.delivered)} / ${fmt(size)} · produced ${fmt(order.samples.produced)} · shards ${fmt(order.shards.done)} / ${fmt(order.shards.total)} · revision ${fmt(order.revision)} · `,
      h('time', { datetime: order.createdAt, text: fmtTime(order.createdAt) }),
    );
    if (order.error) entry.numbers.append(h('span', { class: 'order-error', text: ` · ${order.error}` }));
    showRanks(entry, order);
    entry.cancel.hidden = !ACTIVE.has(order.status);
    return entry.element;
  }

  /**
   * Each rank's part of an order with several (its current generation after a reshape): ranks
   * must end with equal counts, so a rank that falls behind is worth seeing.
   */
  function showRanks(entry, order) {
    const streams = order.ranks > 1 ? order.streams ?? [] : [];
    entry.ranks.hidden = streams.length === 0;
    while (entry.rankRows.length > streams.length) entry.rankRows.pop().element.remove();
    streams.forEach((stream, i) => {
      let row = entry.rankRows[i];
      if (!row) {
        const bar = h('div', { class: 'order-bar rank-bar', role: 'progressbar', 'aria-valuemin': '0' });
        const produced = h('span', { class: 'produced' });
        const delivered = h('span', { class: 'delivered' });
        bar.append(produced, delivered);
        const label = h('span', { class: 'rank-label' });
        const numbers = h('span', { class: 'rank-numbers small' });
        row = { element: h('li', { class: 'order-rank' }, label, bar, numbers), bar, produced, delivered, label, numbers };
        entry.rankRows.push(row);
        entry.ranks.append(row.element);
      }
      const share = (n) => (stream.length > 0 ? Math.min(100, (n / stream.length) * 100) : 0);
      row.element.dataset.rank = String(stream.rank);
      row.label.textContent = `Rank ${stream.rank}`;
      row.bar.setAttribute('aria-label', `Order ${order.id} rank ${stream.rank} delivered`);
      row.bar.setAttribute('aria-valuemax', String(stream.length));
      row.bar.setAttribute('aria-valuenow', String(stream.delivered));
      row.bar.setAttribute('aria-valuetext', `${fmt(stream.delivered)} of ${fmt(stream.length)} delivered, ${fmt(stream.produced)} produced`);
      row.produced.style.width = `${share(stream.produced)}%`;
      row.delivered.style.width = `${share(stream.delivered)}%`;
      const mode = stream.mode === 'none' ? 'not polled yet' : stream.mode === 'cursor' ? 'cursor polls' : 'shared polls';
      row.numbers.textContent = `${fmt(stream.delivered)} / ${fmt(stream.length)} · ${mode}`;
    });
  }

  /** Puts `orders` into `list` in order, reusing each order's element (focus and state stay). */
  function place(list, orders, empty) {
    const wanted = orders.map(card);
    wanted.forEach((element, i) => {
      if (list.children[i] !== element) list.insertBefore(element, list.children[i] ?? null);
    });
    while (list.children.length > wanted.length) list.lastElementChild.remove();
    empty.hidden = orders.length > 0;
  }

  let inFlight = false;
  async function refresh() {
    if (inFlight || document.hidden) return;
    inFlight = true;
    try {
      const [active, all] = await Promise.all([apiJson(paths.orders(true), { signal: controller.signal }), apiJson(paths.orders(false), { signal: controller.signal })]);
      const activeIds = new Set(active.orders.map((o) => o.id));
      place(activeList, active.orders, activeEmpty);
      place(recentList, all.orders.filter((o) => !activeIds.has(o.id) && !ACTIVE.has(o.status)).slice(0, RECENT), recentEmpty);
      for (const id of cards.keys()) if (!cards.get(id).element.isConnected) cards.delete(id);
      await exportJobs.refresh(controller.signal);
      showError(errors, null);
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      if (error.name !== 'AbortError') showError(errors, error, 'Could not list orders and exports');
    } finally {
      inFlight = false;
    }
  }

  async function cancelOrder(id, button) {
    const ok = await confirmDialog({
      title: 'Cancel this order?',
      message: `Order ${id} stops: pending shards are skipped and samples not yet delivered are dropped.`,
      confirm: 'Cancel order',
      danger: true,
    });
    if (!ok) {
      button.focus();
      return;
    }
    try {
      await api(paths.order(id), { method: 'DELETE' });
      toast(`Order ${id} cancelled.`);
      await refresh();
    } catch (error) {
      showError(errors, error, 'Cancel failed');
    }
  }

  activeEmpty.hidden = true;
  recentEmpty.hidden = true;
  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  const onVisible = () => {
    if (!document.hidden) refresh();
  };
  document.addEventListener('visibilitychange', onVisible);
  return () => {
    clearInterval(timer);
    document.removeEventListener('visibilitychange', onVisible);
    controller.abort();
  };
}
