// Scan: for keyboard-wedge scanners (they type the code and Enter). Every
// scan gets its own event id and goes to the same engine as handheld scans
// (POST /api/v1/scanner/console-events), so GS1, pack quantities and
// duplicates follow the same rules. When the server cannot be reached the
// scan waits in a queue (kept in localStorage per user: scans, never tokens)
// and is sent later in batches; the event ids make resends harmless.
import { api, me, can, ApiError } from './api.js';
import { h, page, table, field, alertBox, warehouses, warehouseSelect, errorText } from './ui.js';

const ENDPOINT = '/api/v1/scanner/console-events';
const BATCH = 500;

// ---- the offline queue ---------------------------------------------------
const queueKey = () => `inventory-console.scan-queue.${me.user?.id}`;
function loadQueue() {
  try {
    return JSON.parse(localStorage.getItem(queueKey()) || '[]');
  } catch {
    return [];
  }
}
function saveQueue(q) {
  if (q.length) localStorage.setItem(queueKey(), JSON.stringify(q));
  else localStorage.removeItem(queueKey());
}
const listeners = new Set();
function changed(results, events = []) {
  for (const f of listeners) f(results, events);
}
export function queued() {
  return me.user ? loadQueue().length : 0;
}

let flushing = null;
/** Sends queued scans in order, in batches; stops at the first network failure. */
export function flushQueue() {
  if (!me.user) return Promise.resolve();
  flushing ??= sendQueued().finally(() => {
    flushing = null;
    changed([]);
  });
  return flushing;
}
async function sendQueued() {
  try {
    for (let q = loadQueue(); q.length; q = loadQueue()) {
      const batch = q.slice(0, BATCH);
      const resp = await api(ENDPOINT, { method: 'POST', body: { events: batch } });
      const sent = new Set(batch.map((e) => e.event_id));
      saveQueue(loadQueue().filter((e) => !sent.has(e.event_id)));
      changed(resp.results, batch);
    }
  } catch {
    // Still offline (or the server refused the batch as a whole): try again later.
  }
}
window.addEventListener('online', () => flushQueue());
setInterval(() => {
  if (queued() && navigator.onLine) flushQueue();
}, 5000);

// ---- sound ---------------------------------------------------------------
let audio = null;
function beep(ok) {
  try {
    audio ??= new AudioContext();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = ok ? 'sine' : 'square';
    osc.frequency.value = ok ? 880 : 220;
    gain.gain.value = 0.08;
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + (ok ? 0.08 : 0.25));
  } catch {
    // No audio device: the colour and text still say it.
  }
}

// ---- the page ------------------------------------------------------------
export async function scan(view) {
  if (!can('clerk')) {
    view.replaceChildren(...page('Scan'), h('p', {}, 'Your role (viewer) may look but not post scans. Ask an admin for the clerk role.'));
    return;
  }
  const list = await warehouses();
  const { select: warehouse, wrapper: warehouseField } = warehouseSelect(list);
  const action = h('select', { name: 'action' },
    h('option', { value: 'receive' }, 'Receive'),
    h('option', { value: 'issue' }, 'Issue'),
    h('option', { value: 'count' }, 'Count'));
  const countSelect = h('select', { name: 'count' });
  const countField = field('Count session', countSelect);
  const quantity = h('input', { type: 'number', name: 'quantity', min: '1', max: '10000', value: '1', inputmode: 'numeric' });
  const barcode = h('input', { type: 'text', name: 'barcode', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off' });
  // Where in the warehouse: a location's barcode or code (empty: the server's default).
  const whereInput = h('input', { type: 'text', name: 'location', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off', placeholder: 'Default location' });
  const status = h('p', { role: 'status', class: 'scan-status', id: 'scan-status' });
  const detail = h('p', { class: 'scan-detail', id: 'scan-detail' });
  const queueInfo = h('p', { class: 'muted', id: 'scan-queue' });
  const recentTable = table('Recent scans', ['Time', 'Action', 'Barcode', 'Result', 'Product'], []);
  const recent = recentTable.tBodies[0];
  recent.replaceChildren();
  const box = alertBox();

  async function loadCounts() {
    countSelect.replaceChildren();
    const open = await api(`/api/v1/counts?warehouse_id=${warehouse.value}&status=open&limit=50`);
    for (const c of open.items) countSelect.append(h('option', { value: c.id }, `Opened ${new Date(c.opened_at).toLocaleString()}${c.blind ? ' (blind)' : ''}`));
    if (!open.items.length) countSelect.append(h('option', { value: '' }, 'No open count in this warehouse'));
  }
  async function modeChanged() {
    countField.hidden = action.value !== 'count';
    if (!countField.hidden) await loadCounts().catch((e) => box.show(e));
  }
  action.addEventListener('change', modeChanged);
  warehouse.addEventListener('change', modeChanged);
  await modeChanged();

  function showQueue() {
    const n = queued();
    queueInfo.textContent = n ? `${n} scan${n === 1 ? '' : 's'} waiting to be sent (offline).` : 'No scans waiting.';
  }
  function report(r, ev) {
    const rejected = r.status === 'rejected';
    status.textContent = rejected ? `Rejected: ${r.reason}` : r.status === 'duplicate' ? 'Duplicate: already applied' : 'Applied';
    status.className = `scan-status ${rejected ? 'bad' : 'good'}`;
    const parts = [];
    if (r.product) parts.push(`${r.product.sku} · ${r.product.name}`);
    if (r.units) parts.push(`${r.units} ${r.product?.unit || 'units'}`);
    if (r.level !== null && r.level !== undefined) parts.push(`Level: ${r.level}`);
    if (r.lot) parts.push(`lot ${r.lot}`);
    if (r.expires_on) parts.push(`expires ${r.expires_on}`);
    detail.textContent = parts.join(' · ');
    beep(!rejected);
    addRecent(ev.action, ev, status.textContent, parts.join(' · '));
  }
  function addRecent(act, ev, outcome, what) {
    const shown = ev.barcode.replace(/\x1d/g, '<GS>') + (ev.location ? ` @ ${ev.location}` : ''); // FNC1 is invisible otherwise
    recent.prepend(h('tr', {}, h('td', {}, new Date().toLocaleTimeString()), h('td', {}, act), h('td', {}, shown), h('td', {}, outcome), h('td', {}, what)));
    while (recent.children.length > 15) recent.lastChild.remove();
  }
  const onFlushed = (results, events) => {
    showQueue();
    results.forEach((r, i) => addRecent(`${events[i].action} (queued)`, events[i], r.status === 'rejected' ? `Rejected: ${r.reason}` : r.status === 'duplicate' ? 'Duplicate' : 'Applied', r.product ? `${r.product.sku}${r.level != null ? ` · Level: ${r.level}` : ''}` : ''));
  };
  listeners.add(onFlushed);

  async function submit(code) {
    const ev = {
      event_id: crypto.randomUUID(),
      barcode: code,
      action: action.value,
      quantity: Number(quantity.value) || 1,
      warehouse_id: warehouse.value,
      scanned_at: new Date().toISOString(),
    };
    if (ev.action === 'count') ev.count_id = countSelect.value || null;
    if (whereInput.value.trim()) ev.location = whereInput.value.trim();
    // Keep order: while older scans wait, this one waits behind them.
    if (queued()) return enqueue(ev);
    try {
      const resp = await api(ENDPOINT, { method: 'POST', body: { events: [ev] } });
      report(resp.results[0], ev);
    } catch (err) {
      if (err instanceof ApiError) {
        status.textContent = `Rejected: ${errorText(err)}`;
        status.className = 'scan-status bad';
        detail.textContent = '';
        beep(false);
      } else {
        enqueue(ev); // network failure: the request may or may not have arrived; the id settles it
      }
    }
  }
  function enqueue(ev) {
    const q = loadQueue();
    q.push(ev);
    saveQueue(q);
    status.textContent = 'Queued: will be sent when the connection is back';
    status.className = 'scan-status wait';
    detail.textContent = '';
    showQueue();
    flushQueue();
  }

  barcode.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    e.preventDefault();
    const code = barcode.value.replace(/[\r\n]+$/, '');
    barcode.value = '';
    if (code.trim()) submit(code);
  });
  // Keep the scanner's input focused, unless the user moved to another control.
  const refocus = (e) => {
    if (!e.relatedTarget) setTimeout(() => document.activeElement === document.body && barcode.isConnected && barcode.focus(), 0);
  };
  barcode.addEventListener('blur', refocus);
  // A location label scanned into Location (code and Enter) hands over to Barcode.
  whereInput.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    e.preventDefault();
    barcode.focus();
  });
  for (const control of [warehouse, action, countSelect, quantity]) control.addEventListener('change', () => barcode.focus());

  view.replaceChildren(
    ...page('Scan'),
    h('p', { class: 'muted' }, 'Scan into the Barcode field: the scanner types the code and Enter. GS1 codes with FNC1 (ASCII 29) are understood.'),
    box,
    h('div', { class: 'scan-form' }, warehouseField, field('Action', action), countField, field('Quantity', quantity), field('Location (optional)', whereInput)),
    h('div', { class: 'scan-input' }, field('Barcode', barcode)),
    status,
    detail,
    queueInfo,
    recentTable,
  );
  showQueue();
  barcode.focus();
  return () => {
    listeners.delete(onFlushed);
    barcode.removeEventListener('blur', refocus);
  };
}
