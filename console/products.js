// Products: search as you type, and a product page with stock by warehouse
// (reserved and available when the API gives them), by location and lot, and
// its ledger history.
import { api, query, can } from './api.js';
import { h, page, table, field, number, when, alertBox, warehouseName, warehouses, warehouseSelect, num } from './ui.js';

let lastSearch = '';

export async function products(view) {
  const search = h('input', { type: 'search', name: 'q', autocomplete: 'off', value: lastSearch, placeholder: 'SKU, name or barcode' });
  const results = h('div', { 'aria-live': 'polite' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'More results');
  const box = alertBox();
  view.replaceChildren(...page('Products'), h('div', { role: 'search' }, field('Search', search)), box, results, more);

  let cursor = null;
  let rows = [];
  let seq = 0;
  async function load(reset) {
    const mine = ++seq;
    try {
      const q = search.value.trim();
      const resp = await api(`/api/v1/products${query({ q, limit: 25, cursor: reset ? null : cursor })}`);
      if (mine !== seq) return; // a newer keystroke won
      lastSearch = q;
      rows = reset ? resp.items : rows.concat(resp.items);
      cursor = resp.next_cursor;
      more.hidden = !cursor;
      results.replaceChildren(
        table(q ? `${rows.length}${cursor ? '+' : ''} products matching “${q}”` : 'Products', ['SKU', 'Name', 'Unit', num('Reorder point'), 'Status'],
          rows.map((p) => h('tr', {},
            h('td', {}, h('a', { href: `#/products/${p.id}` }, p.sku)),
            h('td', {}, p.name),
            h('td', {}, p.unit),
            h('td', { class: 'num' }, number.format(p.reorder_point)),
            h('td', {}, p.active ? 'Active' : 'Archived')))),
      );
      box.clear();
    } catch (err) {
      if (mine === seq) box.show(err);
    }
  }
  let timer;
  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => load(true), 150);
  });
  more.addEventListener('click', () => load(false));
  await load(true);
  search.focus();
  return () => clearTimeout(timer);
}

// Columns of the stock-by-warehouse table. Reserved and available show when
// the API sends them (a server without them still gets the other columns).
const STOCK_COLUMNS = [
  { title: 'Warehouse', cell: (r) => r.warehouseLabel },
  { title: 'On hand', cell: (r) => number.format(r.quantity), num: true },
  { title: 'Reserved', cell: (r) => number.format(r.reserved ?? 0), num: true, field: 'reserved' },
  { title: 'Available', cell: (r) => number.format(r.available ?? r.quantity - (r.reserved ?? 0)), num: true, field: 'available' },
  { title: 'Value', cell: (r) => number.format(Number(r.value)), num: true },
];

const today = () => new Date().toISOString().slice(0, 10);

export async function product(view, id) {
  const [p, stock] = await Promise.all([api(`/api/v1/products/${encodeURIComponent(id)}`), api(`/api/v1/products/${encodeURIComponent(id)}/stock`)]);
  for (const w of stock.warehouses) w.warehouseLabel = await warehouseName(w.warehouse_id);
  const columns = STOCK_COLUMNS.filter((c) => !c.field || stock.warehouses.some((w) => typeof w[c.field] === 'number'));
  const positions = table('Stock by location and lot', ['Warehouse', 'Location', 'Lot', 'Expires', num('On hand')], []);
  const placed = positions.tBodies[0];
  placed.replaceChildren();
  const morePositions = h('button', { type: 'button', class: 'secondary', hidden: true }, 'More positions');
  const ledger = table('Ledger, newest first', ['When', 'Kind', 'Warehouse', num('Change'), num('Balance'), 'Reference / lot'], []);
  const history = ledger.tBodies[0];
  history.replaceChildren();
  const older = h('button', { type: 'button', class: 'secondary' }, 'Older movements');
  const box = alertBox();
  view.replaceChildren(
    h('p', {}, h('a', { href: '#/products' }, '← Products')),
    ...page(`${p.sku} · ${p.name}`),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Unit'), h('dd', {}, p.unit),
      h('dt', {}, 'Barcodes'), h('dd', {}, p.barcodes.map((b) => `${b.barcode}${b.pack_quantity > 1 ? ` (pack of ${b.pack_quantity})` : ''}`).join(', ') || '—'),
      h('dt', {}, 'Reorder point'), h('dd', {}, String(p.reorder_point)),
      p.tracking ? [h('dt', {}, 'Tracking'), h('dd', {}, { none: 'None', lot: 'By lot', serial: 'By serial number' }[p.tracking] || p.tracking)] : '',
      h('dt', {}, 'Status'), h('dd', {}, p.active ? 'Active' : 'Archived')),
    h('h2', {}, 'Stock'),
    table(`Stock by warehouse: ${number.format(stock.total)} ${p.unit} in all`,
      columns.map((c) => (c.num ? num(c.title) : c.title)),
      stock.warehouses.map((r) => h('tr', {}, columns.map((c) => h('td', { class: c.num ? 'num' : null }, c.cell(r)))))),
    positions,
    morePositions,
    can('clerk') ? await movementForm(p, () => product(view, id)) : '',
    h('h2', {}, 'History'),
    box,
    ledger,
    older,
  );
  let positionsCursor = null;
  async function placesMore() {
    try {
      const resp = await api(`/api/v1/stock/positions${query({ product_id: id, limit: 100, cursor: positionsCursor })}`);
      const now = today();
      for (const x of resp.items) {
        const expired = x.expires_on && x.expires_on < now;
        placed.append(h('tr', {},
          h('td', {}, x.warehouse_code),
          h('td', { title: x.location_path }, x.location_path || x.location_code),
          h('td', {}, x.lot ?? '—'),
          h('td', {}, x.expires_on ?? '', expired ? [' ', h('span', { class: 'tag bad' }, 'Expired')] : ''),
          h('td', { class: 'num' }, number.format(x.quantity))));
      }
      if (!placed.children.length) placed.append(h('tr', {}, h('td', { colspan: 5 }, 'Nothing on hand.')));
      positionsCursor = resp.next_cursor;
      morePositions.hidden = !positionsCursor;
    } catch (err) {
      box.show(err);
    }
  }
  morePositions.addEventListener('click', placesMore);
  await placesMore();

  let cursor = null;
  async function more() {
    try {
      const resp = await api(`/api/v1/transactions${query({ product_id: id, limit: 20, cursor })}`);
      for (const t of resp.items) {
        history.append(h('tr', {},
          h('td', {}, when(t.created_at)),
          h('td', {}, t.kind.replace('_', ' ')),
          h('td', {}, await warehouseName(t.warehouse_id)),
          h('td', { class: 'num' }, `${t.quantity > 0 ? '+' : ''}${number.format(t.quantity)}`),
          h('td', { class: 'num' }, number.format(t.balance_after)),
          h('td', {}, [t.reference, t.lot && `lot ${t.lot}`, t.reason].filter(Boolean).join(' · '))));
      }
      if (!history.children.length) history.append(h('tr', {}, h('td', { colspan: 6 }, 'No movements yet.')));
      cursor = resp.next_cursor;
      older.hidden = !cursor;
    } catch (err) {
      box.show(err);
    }
  }
  older.addEventListener('click', more);
  await more();
}

/** Receive or issue by hand (for goods without a barcode label). */
async function movementForm(p, reload) {
  const { select: warehouse, wrapper } = warehouseSelect(await warehouses());
  const quantity = h('input', { type: 'number', min: '1', value: '1', required: true, inputmode: 'numeric' });
  const reference = h('input', { type: 'text', maxlength: '200', autocomplete: 'off' });
  const box = alertBox();
  const done = h('p', { role: 'status' });
  const form = h('form', { class: 'card', 'aria-labelledby': 'move-title' },
    h('h2', { id: 'move-title' }, 'Receive or issue'),
    h('div', { class: 'scan-form' }, wrapper, field('Quantity', quantity), field('Reference (optional)', reference)),
    box,
    h('div', { class: 'actions' },
      h('button', { type: 'submit', value: 'receive' }, 'Receive'),
      h('button', { type: 'submit', value: 'issue', class: 'secondary' }, 'Issue')),
    done);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const kind = e.submitter?.value === 'issue' ? 'issue' : 'receive';
    box.clear();
    try {
      // One Idempotency-Key per submission: the resend after a silent token refresh cannot post twice.
      const resp = await api(`/api/v1/stock/${kind}`, {
        method: 'POST',
        headers: { 'Idempotency-Key': crypto.randomUUID() },
        body: { product_id: p.id, warehouse_id: warehouse.value, quantity: Number(quantity.value), reference: reference.value || null },
      });
      const level = resp.levels?.[0]?.quantity;
      await reload();
      document.querySelector('#move-status').textContent = `${kind === 'issue' ? 'Issued' : 'Received'}: level now ${level}.`;
    } catch (err) {
      done.textContent = '';
      box.show(err);
    }
  });
  done.id = 'move-status';
  return form;
}
