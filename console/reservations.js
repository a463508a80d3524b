// Reservations: stock promised to orders. A list (filtered by status, paged
// by cursor), a form to reserve (the product found by search, the warehouse
// from a select) and cancel, after a confirmation. 409 insufficient-stock
// says how much is available.
import { api, can, query } from './api.js';
import { h, page, table, field, number, when, alertBox, warehouses, warehouseSelect, warehouseName, num, errorText } from './ui.js';

const STATUSES = [['active', 'Active'], ['', 'All'], ['fulfilled', 'Fulfilled'], ['cancelled', 'Cancelled'], ['expired', 'Expired']];
let lastStatus = 'active';

// SKUs of the products shown, one request per product per session.
const skus = new Map();
function skuOf(id) {
  if (!skus.has(id)) {
    skus.set(id, api(`/api/v1/products/${encodeURIComponent(id)}`).then((p) => p.sku, () => {
      skus.delete(id);
      return id;
    }));
  }
  return skus.get(id);
}

export async function reservations(view) {
  const box = alertBox();
  const done = h('p', { role: 'status', id: 'reservation-status' });
  const status = h('select', { name: 'status' }, STATUSES.map(([v, t]) => h('option', { value: v }, t)));
  status.value = lastStatus;
  const listArea = h('div');
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'More reservations');
  const form = can('clerk') ? await createForm(box, done, () => load(true)) : '';

  let cursor = null;
  let rows = [];
  async function load(reset) {
    try {
      const resp = await api(`/api/v1/reservations${query({ status: status.value, limit: 25, cursor: reset ? null : cursor })}`);
      const fresh = [];
      for (const r of resp.items) fresh.push(await row(r));
      rows = reset ? fresh : rows.concat(fresh);
      cursor = resp.next_cursor;
      more.hidden = !cursor;
      const which = STATUSES.find(([v]) => v === status.value)[1].toLowerCase();
      listArea.replaceChildren(table(`Reservations (${which}), newest first`,
        ['Created', 'Product', 'Warehouse', 'Reference', num('Quantity'), num('Open'), 'Status', 'Expires', 'Action'], rows));
    } catch (err) {
      box.show(err);
    }
  }

  async function row(r) {
    const sku = await skuOf(r.product_id);
    const label = r.reference || sku;
    const cancel = r.status === 'active' && can('clerk')
      ? h('button', {
        type: 'button', class: 'danger', 'aria-label': `Cancel reservation ${label}`,
        onclick: async () => {
          if (!confirm(`Cancel reservation ${label}? Its ${r.open_quantity} units become available again.`)) return;
          box.clear();
          try {
            await api(`/api/v1/reservations/${r.id}/cancel`, { method: 'POST', headers: { 'Idempotency-Key': crypto.randomUUID() } });
            await load(true);
            done.textContent = `Cancelled reservation ${label}.`;
          } catch (err) {
            box.show(err);
          }
        },
      }, 'Cancel')
      : '';
    return h('tr', {},
      h('td', {}, when(r.created_at)),
      h('td', { class: 'nowrap' }, h('a', { href: `#/products/${r.product_id}` }, sku), r.lot ? ` · lot ${r.lot}` : ''),
      h('td', {}, await warehouseName(r.warehouse_id)),
      h('td', {}, r.reference || ''),
      h('td', { class: 'num' }, number.format(r.quantity)),
      h('td', { class: 'num' }, number.format(r.open_quantity)),
      h('td', {}, r.status),
      h('td', {}, when(r.expires_at) || 'never'),
      h('td', {}, cancel));
  }

  status.addEventListener('change', () => {
    lastStatus = status.value;
    load(true);
  });
  more.addEventListener('click', () => load(false));
  await load(true);
  view.replaceChildren(...page('Reservations'), box, form, done,
    h('div', { class: 'scan-form' }, field('Status', status)), listArea, more);
}

/** Reserve: search a product (SKU, name or barcode), pick it, and where, how many, until when. */
async function createForm(box, done, reload) {
  const search = h('input', { type: 'search', name: 'product-search', autocomplete: 'off', placeholder: 'SKU, name or barcode' });
  const product = h('select', { name: 'product', required: true }, h('option', { value: '' }, 'Search for a product first'));
  const { select: warehouse, wrapper } = warehouseSelect(await warehouses());
  const quantity = h('input', { type: 'number', name: 'quantity', min: '1', value: '1', required: true, inputmode: 'numeric' });
  const reference = h('input', { type: 'text', name: 'reference', maxlength: '200', autocomplete: 'off' });
  const expires = h('input', { type: 'datetime-local', name: 'expires_at' });

  let seq = 0;
  let timer;
  async function find() {
    const mine = ++seq;
    const q = search.value.trim();
    if (!q) return;
    try {
      const resp = await api(`/api/v1/products${query({ q, limit: 20 })}`);
      if (mine !== seq) return;
      const active = resp.items.filter((p) => p.active);
      product.replaceChildren(...(active.length
        ? active.map((p) => h('option', { value: p.id }, `${p.sku} · ${p.name}`))
        : [h('option', { value: '' }, `No product matches “${q}”`)]));
      // An exact SKU match goes first, selected.
      const exact = active.find((p) => p.sku.toLowerCase() === q.toLowerCase());
      if (exact) product.value = exact.id;
    } catch (err) {
      if (mine === seq) box.show(err);
    }
  }
  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(find, 150);
  });
  search.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    e.preventDefault(); // Enter searches now instead of submitting
    clearTimeout(timer);
    find();
  });

  const form = h('form', { class: 'card', 'aria-labelledby': 'reserve-title' },
    h('h2', { id: 'reserve-title' }, 'Reserve stock'),
    h('div', { class: 'scan-form' }, field('Find product', search), field('Product', product)),
    h('div', { class: 'scan-form' }, wrapper, field('Quantity', quantity), field('Reference (optional)', reference),
      field('Expires at (optional)', expires)),
    h('button', { type: 'submit' }, 'Reserve'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    box.clear();
    done.textContent = '';
    if (!product.value) return box.show('Choose a product: type its SKU, name or barcode in “Find product”.');
    const chosen = product.selectedOptions[0].textContent.split(' · ')[0];
    try {
      const r = await api('/api/v1/reservations', {
        method: 'POST',
        headers: { 'Idempotency-Key': crypto.randomUUID() },
        body: {
          product_id: product.value,
          warehouse_id: warehouse.value,
          quantity: Number(quantity.value),
          reference: reference.value.trim() || null,
          expires_at: expires.value ? new Date(expires.value).toISOString() : null,
        },
      });
      skus.set(r.product_id, Promise.resolve(chosen));
      reference.value = '';
      expires.value = '';
      await reload();
      done.textContent = `Reserved ${number.format(r.quantity)} × ${chosen}${r.reference ? ` for ${r.reference}` : ''}.`;
    } catch (err) {
      const available = err.problem?.available;
      box.show(available !== null && available !== undefined
        ? `Not enough stock: only ${number.format(available)} available in this warehouse (on hand minus reserved).`
        : errorText(err));
    }
  });
  return form;
}
