// The console shell: sign in, navigation and hash routing (#/products/ID),
// so the server only ever serves these static files.
import { api, signIn, signOut, signedIn, whenSignedOut, me, can } from './api.js';
import { h, field, alertBox, forgetWarehouses } from './ui.js';
import { dashboard } from './dashboard.js';
import { products, product } from './products.js';
import { scan, flushQueue } from './scan.js';
import { counts, countPage } from './counts.js';
import { devices, users } from './admin.js';
import { reservations } from './reservations.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const routes = [
  { path: 'dashboard', label: 'Dashboard', show: () => true, render: dashboard },
  { path: 'products', label: 'Products', show: () => true, render: products },
  { path: 'scan', label: 'Scan', show: () => true, render: scan },
  { path: 'counts', label: 'Counts', show: () => true, render: counts },
  { path: 'reservations', label: 'Reservations', show: () => true, render: reservations },
  { path: 'devices', label: 'Devices', show: () => can('manager'), render: devices },
  { path: 'users', label: 'Users', show: () => can('admin'), render: users },
];
const detail = { products: product, counts: countPage };

// Each page may return a cleanup function (e.g. to close the live feed).
let leave = null;

async function render() {
  leave?.();
  leave = null;
  if (!signedIn()) return showSignIn();
  const [name = 'dashboard', id] = location.hash.replace(/^#\/?/, '').split('/');
  const route = routes.find((r) => r.path === name && r.show()) || routes[0];
  for (const a of nav.querySelectorAll('a')) {
    if (a.dataset.path === route.path) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const view = h('div');
  main.replaceChildren(view);
  try {
    const renderer = id && detail[route.path] ? detail[route.path] : route.render;
    leave = (await renderer(view, decodeURIComponent(id || ''))) || null;
  } catch (err) {
    const box = alertBox();
    box.show(err);
    view.replaceChildren(h('h1', { tabindex: '-1' }, 'Something went wrong'), box);
  }
  // Move focus to the new page's heading, unless the page focused a control itself.
  if (!view.contains(document.activeElement)) main.querySelector('h1')?.focus({ preventScroll: true });
}

function showNav() {
  nav.replaceChildren(
    h('ul', {}, routes.filter((r) => r.show()).map((r) => h('li', {}, h('a', { href: `#/${r.path}`, 'data-path': r.path }, r.label)))),
  );
  who.replaceChildren(
    h('span', { class: 'who' }, `${me.user.display_name || me.user.email} (${me.user.role})`),
    h('button', { type: 'button', class: 'secondary', onclick: () => signOut() }, 'Sign out'),
  );
  nav.hidden = false;
  who.hidden = false;
}

function showSignIn() {
  nav.hidden = true;
  who.hidden = true;
  document.title = 'Sign in · Inventory console';
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const box = alertBox();
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h(
    'form',
    { class: 'card narrow', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title', tabindex: '-1' }, 'Sign in'),
    field('Email', email),
    field('Password', password),
    box,
    button,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    box.clear();
    button.disabled = true;
    try {
      await signIn(email.value.trim(), password.value);
      me.user = await api('/api/v1/auth/me');
      password.value = '';
      showNav();
      flushQueue();
      if (!location.hash || location.hash === '#/') location.hash = '#/dashboard';
      else render();
    } catch (err) {
      box.show(err.status === 401 ? 'Wrong email or password.' : err);
      button.disabled = false;
    }
  });
  main.replaceChildren(form);
  email.focus();
}

whenSignedOut(() => {
  me.user = null;
  forgetWarehouses();
  render();
});
window.addEventListener('hashchange', render);
render();
