// DOM helpers. Everything is built with createElement/textContent, never
// innerHTML, so API data can never become markup.
import { api } from './api.js';

/** h('p', {class: 'x', onclick: f}, 'text', child) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

/** A page: a heading (focused on arrival, so screen readers announce it) and content. */
export function page(title, ...content) {
  const heading = h('h1', { tabindex: '-1' }, title);
  document.title = `${title} · Inventory console`;
  return [heading, ...content];
}

/** A table; a header given as {text, num: true} is a right-aligned number column. */
export function table(caption, headers, rows) {
  return h(
    'table',
    {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col', class: t.num ? 'num' : null }, t.text ?? t)))),
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: headers.length }, 'Nothing yet.'))),
  );
}

export function field(label, control) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), control);
}

export function errorText(err) {
  if (err instanceof TypeError) return 'The server cannot be reached.';
  const problem = err.problem;
  if (problem?.errors?.length) return problem.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
  return err.message;
}

/** A region that announces errors politely. */
export function alertBox() {
  const box = h('p', { class: 'alert', role: 'alert', hidden: true });
  box.show = (err) => {
    box.textContent = typeof err === 'string' ? err : errorText(err);
    box.hidden = false;
  };
  box.clear = () => {
    box.textContent = '';
    box.hidden = true;
  };
  return box;
}

export const number = new Intl.NumberFormat();
/** A number column's header. */
export const num = (text) => ({ text, num: true });
export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : '';
}

// Warehouses change rarely; one load per session.
let warehouseList = null;
export async function warehouses() {
  if (!warehouseList) {
    const all = [];
    let cursor;
    do {
      const page = await api(`/api/v1/warehouses?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      all.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor);
    warehouseList = all;
  }
  return warehouseList;
}
export function forgetWarehouses() {
  warehouseList = null;
}
export async function warehouseName(id) {
  const w = (await warehouses()).find((x) => x.id === id);
  return w ? `${w.code} · ${w.name}` : id;
}

// The warehouse last chosen anywhere is preselected everywhere: a clerk works in one.
let lastWarehouse = null;
export function warehouseSelect(list, label = 'Warehouse') {
  const select = h('select', { name: 'warehouse' }, list.filter((w) => w.active).map((w) => h('option', { value: w.id }, `${w.code} · ${w.name}`)));
  if (lastWarehouse && list.some((w) => w.id === lastWarehouse && w.active)) select.value = lastWarehouse;
  select.addEventListener('change', () => {
    lastWarehouse = select.value;
  });
  return { select, wrapper: field(label, select) };
}
