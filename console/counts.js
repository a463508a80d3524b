// Counts (stocktakes): open a session, follow its progress, enter counted
// quantities by hand (or scan with Action "Count" on the Scan page), and
// complete or cancel it as a manager.
import { api, can, query } from './api.js';
import { h, page, table, field, alertBox, when, warehouses, warehouseSelect, warehouseName, number, num } from './ui.js';

export async function counts(view) {
  const box = alertBox();
  const list = await warehouses();
  const content = [];
  if (can('clerk')) {
    const { select: warehouse, wrapper } = warehouseSelect(list);
    const blind = h('input', { type: 'checkbox', name: 'blind', id: 'count-blind' });
    const form = h('form', { class: 'card inline', 'aria-labelledby': 'open-title' },
      h('h2', { id: 'open-title' }, 'Open a count'),
      wrapper,
      h('div', { class: 'field check' }, blind, h('label', { for: 'count-blind' }, 'Blind (hide expected quantities from clerks)')),
      h('button', { type: 'submit' }, 'Open count'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        const c = await api('/api/v1/counts', { method: 'POST', body: { warehouse_id: warehouse.value, blind: blind.checked } });
        location.hash = `#/counts/${c.id}`;
      } catch (err) {
        box.show(err);
      }
    });
    content.push(form);
  }
  const resp = await api(`/api/v1/counts${query({ limit: 50 })}`);
  const rows = [];
  for (const c of resp.items) {
    rows.push(h('tr', {},
      h('td', {}, h('a', { href: `#/counts/${c.id}` }, when(c.opened_at))),
      h('td', {}, await warehouseName(c.warehouse_id)),
      h('td', {}, c.status),
      h('td', {}, c.blind ? 'Blind' : 'Open'),
      h('td', {}, when(c.closed_at))));
  }
  view.replaceChildren(...page('Counts'), box, ...content, table('Count sessions, newest first', ['Opened', 'Warehouse', 'Status', 'Kind', 'Closed'], rows));
}

export async function countPage(view, id) {
  const c = await api(`/api/v1/counts/${encodeURIComponent(id)}`);
  const box = alertBox();
  const counted = c.lines.filter((l) => l.counted_quantity !== null && l.counted_quantity !== undefined).length;
  const open = c.status === 'open';
  const progress = h('progress', { max: String(c.lines.length || 1), value: String(counted), id: 'count-progress', 'aria-label': 'Lines counted' });
  const inputs = new Map();
  const lines = c.lines.map((l) => {
    let counter = '';
    if (open && can('clerk')) {
      const input = h('input', { type: 'number', min: '0', inputmode: 'numeric', 'aria-label': `Counted ${l.sku}`, value: l.counted_quantity ?? '' });
      inputs.set(l.product_id, input);
      counter = input;
    } else counter = l.counted_quantity ?? '—';
    return h('tr', {},
      h('td', {}, h('a', { href: `#/products/${l.product_id}` }, l.sku)),
      h('td', { class: 'num' }, l.expected_quantity ?? 'hidden'),
      h('td', { class: 'num' }, counter),
      h('td', { class: 'num' }, l.variance ?? ''));
  });
  const actions = [];
  if (open && can('clerk')) {
    actions.push(h('button', { type: 'submit' }, 'Save counted quantities'));
  }
  if (open && can('manager')) {
    actions.push(h('button', { type: 'button', class: 'secondary', onclick: () => finish('complete') }, 'Complete count'));
    actions.push(h('button', { type: 'button', class: 'danger', onclick: () => finish('cancel') }, 'Cancel count'));
  }
  async function finish(what) {
    const question = what === 'complete' ? 'Complete this count and post its adjustments?' : 'Cancel this count? Nothing will be posted.';
    if (!confirm(question)) return;
    try {
      const r = await api(`/api/v1/counts/${c.id}/${what}`, { method: 'POST' });
      const n = r?.transactions?.length;
      await countPage(view, id);
      view.querySelector('[role=status]').textContent = what === 'complete' ? `Completed: ${n} adjustment${n === 1 ? '' : 's'} posted.` : 'Cancelled.';
    } catch (err) {
      box.show(err);
    }
  }
  const form = h('form', {},
    table(`${counted} of ${c.lines.length} lines counted`, ['SKU', num('Expected'), num('Counted'), num('Variance')], lines),
    h('div', { class: 'actions' }, actions));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = [];
    for (const l of c.lines) {
      const v = inputs.get(l.product_id)?.value;
      if (v !== undefined && v !== '' && Number(v) !== l.counted_quantity) body.push({ product_id: l.product_id, counted_quantity: Number(v) });
    }
    if (!body.length) return box.show('Nothing changed.');
    try {
      await api(`/api/v1/counts/${c.id}/lines`, { method: 'POST', body: { lines: body } });
      await countPage(view, id);
      view.querySelector('[role=status]').textContent = `Saved ${body.length} line${body.length === 1 ? '' : 's'}.`;
    } catch (err) {
      box.show(err);
    }
  });
  view.replaceChildren(
    h('p', {}, h('a', { href: '#/counts' }, '← Counts')),
    ...page(`Count in ${await warehouseName(c.warehouse_id)}`),
    h('p', {}, `Status: ${c.status}${c.blind ? ' (blind)' : ''} · opened ${when(c.opened_at)}${c.closed_at ? ` · closed ${when(c.closed_at)}` : ''}`),
    h('div', { class: 'field' }, h('span', { class: 'label' }, `Progress: ${number.format(counted)} / ${number.format(c.lines.length)}`), progress),
    h('p', { role: 'status' }),
    box,
    form,
  );
}
