// Devices (managers and admins) and Users (admins).
import { api, query, me } from './api.js';
import { h, page, table, field, alertBox, when, warehouses, warehouseName } from './ui.js';

export async function devices(view) {
  const box = alertBox();
  const list = (await warehouses()).filter((w) => w.active);
  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: '100' });
  const boxes = list.map((w) => {
    const id = `dw-${w.id}`;
    return { w, input: h('input', { type: 'checkbox', id, value: w.id }), label: h('label', { for: id }, `${w.code} · ${w.name}`) };
  });
  const keyArea = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'card', 'aria-labelledby': 'new-device' },
    h('h2', { id: 'new-device' }, 'Register a device'),
    field('Device name', name),
    h('fieldset', {}, h('legend', {}, 'Warehouses'), boxes.map((b) => h('div', { class: 'field check' }, b.input, b.label))),
    h('button', { type: 'submit' }, 'Create device'),
    keyArea);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    box.clear();
    try {
      const d = await api('/api/v1/scanner/devices', {
        method: 'POST',
        body: { name: name.value, warehouse_ids: boxes.filter((b) => b.input.checked).map((b) => b.w.id) },
      });
      name.value = '';
      showKey(keyArea, d);
      await fill();
    } catch (err) {
      box.show(err);
    }
  });
  const tableArea = h('div');
  async function fill() {
    const resp = await api('/api/v1/scanner/devices?limit=200');
    const rows = [];
    for (const d of resp.items) {
      const names = [];
      for (const w of d.warehouse_ids) names.push(await warehouseName(w));
      const revoke = d.revoked_at ? 'Revoked' : h('button', {
        type: 'button', class: 'danger', 'aria-label': `Revoke ${d.name}`,
        onclick: async () => {
          if (!confirm(`Revoke the key of ${d.name}? The device stops working at once.`)) return;
          try {
            await api(`/api/v1/scanner/devices/${d.id}`, { method: 'DELETE' });
            await fill();
          } catch (err) {
            box.show(err);
          }
        },
      }, 'Revoke');
      rows.push(h('tr', {}, h('td', {}, d.name), h('td', {}, h('code', {}, `${d.key_prefix}…`)), h('td', {}, d.key_prefix === 'console' ? 'all (a user’s console scans; no key)' : names.join(', ')), h('td', {}, when(d.last_seen_at) || 'never'), h('td', {}, revoke)));
    }
    tableArea.replaceChildren(table('Devices', ['Name', 'Key', 'Warehouses', 'Last seen', 'Key status'], rows));
  }
  await fill();
  view.replaceChildren(...page('Devices'), box, form, tableArea);
}

function showKey(area, d) {
  const key = h('input', { type: 'text', readonly: true, value: d.api_key, class: 'key', id: 'new-key' });
  const copied = h('span', { role: 'status' });
  const copy = h('button', {
    type: 'button',
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(d.api_key);
        copied.textContent = 'Copied.';
      } catch {
        key.select();
        copied.textContent = 'Select and copy it by hand (Ctrl+C).';
      }
    },
  }, 'Copy key');
  area.replaceChildren(h('div', { class: 'card notice' },
    h('p', {}, h('strong', {}, `Key for ${d.name}: shown only now. `), 'Store it in the device; it cannot be shown again.'),
    field('Device key', key), copy, ' ', copied));
  key.focus();
  key.select();
}

export async function users(view) {
  const box = alertBox();
  const email = h('input', { type: 'email', name: 'email', required: true, autocomplete: 'off' });
  const display = h('input', { type: 'text', name: 'display_name', autocomplete: 'off' });
  const password = h('input', { type: 'password', name: 'password', required: true, minlength: '12', autocomplete: 'new-password' });
  const role = h('select', { name: 'role' }, ['viewer', 'clerk', 'manager', 'admin'].map((r) => h('option', { value: r }, r)));
  role.value = 'clerk';
  const form = h('form', { class: 'card', 'aria-labelledby': 'new-user' },
    h('h2', { id: 'new-user' }, 'Add a user'),
    field('New user email', email), field('Display name', display), field('Initial password (12+ characters)', password), field('Role', role),
    h('button', { type: 'submit' }, 'Add user'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    box.clear();
    try {
      await api('/api/v1/users', { method: 'POST', body: { email: email.value.trim(), password: password.value, role: role.value, display_name: display.value || null } });
      form.reset();
      role.value = 'clerk';
      await fill();
    } catch (err) {
      box.show(err);
    }
  });
  const tableArea = h('div');
  async function fill() {
    const resp = await api(`/api/v1/users${query({ limit: 200 })}`);
    tableArea.replaceChildren(table('Users', ['Email', 'Name', 'Role', 'Status', 'Change'], resp.items.map((u) => {
      const self = u.id === me.user.id;
      const roleSelect = h('select', { 'aria-label': `Role of ${u.email}`, disabled: self }, ['viewer', 'clerk', 'manager', 'admin'].map((r) => h('option', { value: r }, r)));
      roleSelect.value = u.role;
      roleSelect.addEventListener('change', () => update(u, { role: roleSelect.value }));
      const toggle = self ? '' : h('button', { type: 'button', class: u.active ? 'danger' : 'secondary', 'aria-label': `${u.active ? 'Deactivate' : 'Reactivate'} ${u.email}`, onclick: () => update(u, { active: !u.active }) }, u.active ? 'Deactivate' : 'Reactivate');
      return h('tr', {}, h('td', {}, u.email), h('td', {}, u.display_name || ''), h('td', {}, roleSelect), h('td', {}, u.active ? 'Active' : 'Inactive'), h('td', {}, toggle));
    })));
  }
  async function update(u, patch) {
    try {
      await api(`/api/v1/users/${u.id}`, { method: 'PATCH', body: patch });
      await fill();
    } catch (err) {
      box.show(err);
    }
  }
  await fill();
  view.replaceChildren(...page('Users'), box, form, tableArea);
}
