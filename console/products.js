// Products: search as you type, and a product page with stock by warehouse
// and its ledger history. Stock rows are built from a column list so that
// location, lot, reserved and available columns can join when the API has them.
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

// Columns of the stock-by-warehouse table; add location/lot/reserved/available here.
const STOCK_COLUMNS = [
  { title: 'Warehouse', cell: (r) => r.warehouseLabel },
  { title: 'On hand', cell: (r) => number.format(r.quantity), num: true },
  { title: 'Value', cell: (r) => number.format(Number(r.value)), num: true },
];

export async function product(view, id) {
  const [p, stock] = await Promise.all([api(`/api/v1/products/${encodeURIComponent(id)}`), api(`/api/v1/products/${encodeURIComponent(id)}/stock`)]);
  for (const w of stock.warehouses) w.warehouseLabel = await warehouseName(w.warehouse_id);
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
      h('dt', {}, 'Status'), h('dd', {}, p.active ? 'Active' : 'Archived')),
    h('h2', {}, 'Stock'),
    table(`Stock by warehouse: ${number.format(stock.total)} ${p.unit} in all`,
      STOCK_COLUMNS.map((c) => (c.num ? num(c.title) : c.title)),
      stock.warehouses.map((r) => h('tr', {}, STOCK_COLUMNS.map((c) => h('td', { class: c.num ? 'num' : null }, c.cell(r)))))),
    can('clerk') ? await movementForm(p, () => product(view, id)) : '',
    h('h2', {}, 'History'),
    box,
    ledger,
    older,
  );
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
