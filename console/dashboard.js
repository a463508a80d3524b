// Dashboard: summary cards, low stock, movements of the last 14 days (SVG)
// and the live feed. The feed is Server-Sent Events read with fetch, because
// EventSource cannot send the Authorization header the API requires.
import { api, authorised } from './api.js';
import { h, s, page, table, number, when, alertBox, warehouseName, num } from './ui.js';

const DAYS = 14;
const EXPIRY_DAYS = 30;
const SERIES = [
  { name: 'Received', kinds: ['receipt', 'transfer_in'], class: 'in' },
  { name: 'Issued', kinds: ['issue', 'transfer_out'], class: 'out' },
  { name: 'Adjusted', kinds: ['adjustment', 'count_adjustment'], class: 'adj' },
];

export async function dashboard(view) {
  const cards = h('div', { class: 'cards' });
  const low = h('div');
  const expiring = h('div');
  const chart = h('div', { class: 'chart' });
  const feed = h('ol', { class: 'feed', role: 'log', 'aria-label': 'Live feed' });
  const feedState = h('p', { class: 'muted', id: 'feed-state' }, 'Connecting…');
  const box = alertBox();
  view.replaceChildren(
    ...page('Dashboard'),
    box,
    h('section', { 'aria-label': 'Summary' }, cards),
    h('div', { class: 'columns' },
      h('section', { 'aria-labelledby': 'chart-title' }, h('h2', { id: 'chart-title' }, `Movements, last ${DAYS} days`), chart),
      h('section', { 'aria-labelledby': 'feed-title' }, h('h2', { id: 'feed-title' }, 'Live feed'), feedState, feed)),
    h('div', { class: 'pair' },
      h('section', { 'aria-labelledby': 'low-title' }, h('h2', { id: 'low-title' }, 'Low stock'), low),
      h('section', { 'aria-labelledby': 'expiring-title' }, h('h2', { id: 'expiring-title' }, 'Expiring'), expiring)),
  );

  async function refresh() {
    try {
      const [summary, lowStock, movements, soonGone] = await Promise.all([
        api('/api/v1/dashboard/summary'),
        api('/api/v1/dashboard/low-stock?limit=20'),
        api(`/api/v1/dashboard/movements?days=${DAYS}`),
        api(`/api/v1/stock/expiring?within_days=${EXPIRY_DAYS}&limit=20`),
      ]);
      cards.replaceChildren(...summaryCards(summary));
      low.replaceChildren(lowTable(lowStock.items));
      expiring.replaceChildren(expiringTable(soonGone.items));
      chart.replaceChildren(...movementChart(movements));
      box.clear();
    } catch (err) {
      box.show(err);
    }
  }
  await refresh();

  // Cards and chart follow the feed, at most once a second.
  let pending = null;
  const soon = () => {
    pending ??= setTimeout(() => {
      pending = null;
      refresh();
    }, 1000);
  };
  const stop = liveFeed(feed, feedState, soon);
  // The summary is cached for 10 s on the server: a slow poll catches up with it.
  const poll = setInterval(refresh, 15000);
  return () => {
    stop();
    clearTimeout(pending);
    clearInterval(poll);
  };
}

function summaryCards(sm) {
  const card = (label, value) => h('div', { class: 'card stat' }, h('span', { class: 'label' }, label), h('span', { class: 'value' }, value));
  return [
    card('Active products', number.format(sm.active_products)),
    card('Warehouses', number.format(sm.active_warehouses)),
    card('Units on hand', number.format(sm.units_on_hand)),
    card('Stock value', number.format(Number(sm.stock_value))),
    card('Low stock', number.format(sm.low_stock_products)),
    card('Movements today', number.format(sm.movements_today)),
    card('Open counts', number.format(sm.open_counts)),
    card('Rejected scans (24 h)', number.format(sm.rejected_scans_24h ?? 0)),
  ];
}

function lowTable(items) {
  return table(
    'Products at or below their reorder point',
    ['SKU', 'Name', num('On hand'), num('Reorder point'), num('Reorder quantity')],
    items.map((i) =>
      h('tr', {},
        h('td', { class: 'nowrap' }, h('a', { href: `#/products/${i.product_id}` }, i.sku)),
        h('td', {}, i.name),
        h('td', { class: 'num' }, number.format(i.on_hand)),
        h('td', { class: 'num' }, number.format(i.reorder_point)),
        h('td', { class: 'num' }, number.format(i.reorder_quantity)))),
  );
}

/** Lots expiring within EXPIRY_DAYS (and expired ones still on the shelf), soonest first. */
function expiringTable(items) {
  return table(
    `Lots expiring within ${EXPIRY_DAYS} days`,
    ['SKU', 'Lot', 'Expires', num('Quantity'), 'Location'],
    items.map((i) =>
      h('tr', { class: i.expired ? 'expired' : null },
        h('td', { class: 'nowrap' }, h('a', { href: `#/products/${i.product_id}` }, i.sku)),
        h('td', { class: 'nowrap' }, i.lot ?? '—'),
        h('td', { class: 'nowrap' }, i.expires_on, ' ', i.expired
          ? h('span', { class: 'tag bad' }, 'Expired')
          : h('span', { class: 'muted' }, i.days_left === 0 ? '(today)' : `(in ${i.days_left} d)`)),
        h('td', { class: 'num' }, number.format(i.quantity)),
        h('td', {}, `${i.warehouse_code} · ${i.location_path || i.location_code}`))),
  );
}

/** Stacked bars of movements per day, with the same figures as a table for screen readers. */
function movementChart(rows) {
  const days = [];
  const today = new Date();
  for (let i = DAYS - 1; i >= 0; i--) {
    const d = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - i));
    days.push(d.toISOString().slice(0, 10));
  }
  const value = (day, serie) =>
    rows.filter((r) => r.day === day && serie.kinds.includes(r.kind)).reduce((sum, r) => sum + r.movements, 0);
  const totals = days.map((d) => SERIES.reduce((sum, se) => sum + value(d, se), 0));
  const max = Math.max(1, ...totals);
  const W = 560, H = 200, left = 36, bottom = 24, top = 8;
  const bw = (W - left) / DAYS;
  const y = (v) => ((H - bottom - top) * v) / max;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'chart-desc', class: 'bars' });
  svg.append(s('title', { id: 'chart-desc' }, `Movements per day over the last ${DAYS} days; ${totals.reduce((a, b) => a + b, 0)} in all`));
  for (const frac of [0, 0.5, 1]) {
    const yy = H - bottom - (H - bottom - top) * frac;
    svg.append(s('line', { x1: left, x2: W, y1: yy, y2: yy, class: 'grid' }));
    svg.append(s('text', { x: left - 4, y: yy + 4, 'text-anchor': 'end', class: 'axis' }, String(Math.round(max * frac))));
  }
  days.forEach((d, i) => {
    let base = H - bottom;
    for (const se of SERIES) {
      const v = value(d, se);
      if (!v) continue;
      const hgt = y(v);
      base -= hgt;
      const rect = s('rect', { x: left + i * bw + 2, y: base, width: bw - 4, height: hgt, class: se.class });
      rect.append(s('title', {}, `${d}: ${v} ${se.name.toLowerCase()}`));
      svg.append(rect);
    }
    if (i % 2 === DAYS % 2 || i === DAYS - 1) {
      svg.append(s('text', { x: left + i * bw + bw / 2, y: H - 6, 'text-anchor': 'middle', class: 'axis' }, d.slice(5)));
    }
  });
  const legend = h('ul', { class: 'legend' }, SERIES.map((se) => h('li', {}, h('span', { class: `swatch ${se.class}`, 'aria-hidden': 'true' }), se.name)));
  const data = h('details', {},
    h('summary', {}, 'Chart data'),
    table('Movements per day', ['Day', ...SERIES.map((se) => num(se.name))],
      days.map((d) => h('tr', {}, h('td', {}, d), SERIES.map((se) => h('td', { class: 'num' }, String(value(d, se))))))));
  return [svg, legend, data];
}

/** Reads the SSE stream; reconnects with Last-Event-ID. Returns a stop function. */
function liveFeed(list, state, onEvent) {
  const controller = new AbortController();
  let last = null;
  (async () => {
    while (!controller.signal.aborted) {
      try {
        const headers = { Accept: 'text/event-stream' };
        if (last !== null) headers['Last-Event-ID'] = String(last);
        const resp = await authorised('/api/v1/events/stream', { signal: controller.signal, headers });
        if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
        state.textContent = 'Connected: new movements appear here.';
        await readEvents(resp.body, (ev) => {
          if (ev.id) last = Number(ev.id);
          if (!ev.data) return;
          show(list, JSON.parse(ev.data));
          onEvent();
        });
      } catch (err) {
        if (controller.signal.aborted) return;
        state.textContent = 'Disconnected; retrying…';
      }
      await new Promise((r) => setTimeout(r, 3000));
    }
  })();
  return () => controller.abort();
}

async function readEvents(body, handle) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
      const ev = { data: '' };
      for (const line of block.split(/\r?\n/)) {
        const i = line.indexOf(':');
        if (i === 0) continue; // comment (keep-alive)
        const key = i < 0 ? line : line.slice(0, i);
        const val = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
        if (key === 'data') ev.data += (ev.data ? '\n' : '') + val;
        else ev[key] = val;
      }
      handle(ev);
    }
  }
}

async function show(list, e) {
  const p = e.payload || {};
  let text = e.topic;
  if (e.topic.startsWith('stock.')) {
    const where = p.warehouse_id ? await warehouseName(p.warehouse_id) : '';
    text = `${e.topic.slice(6).replace('_', ' ')} ${p.quantity > 0 ? '+' : ''}${p.quantity} → ${p.balance_after} at ${where}`;
  }
  const link = e.aggregate_id && e.topic.match(/^(stock|product)\./) ? h('a', { href: `#/products/${e.aggregate_id}` }, 'product') : null;
  list.prepend(h('li', {}, h('time', { datetime: e.created_at }, when(e.created_at)), ' ', text, link ? ' · ' : '', link));
  while (list.children.length > 20) list.lastChild.remove();
}
