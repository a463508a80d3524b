// Talking to the API. Tokens live in this module's memory only (never in
// localStorage or cookies): a reload signs you out. The access token is
// renewed silently a minute before it expires, and once more on a 401.

let session = null; // { access, refresh, expiresAt, timer }
let onSignedOut = () => {};

/** The signed-in user (from /auth/me), set by the shell. */
export const me = { user: null };
const RANK = { viewer: 0, clerk: 1, manager: 2, admin: 3 };
/** Whether the signed-in user has at least `role`. */
export function can(role) {
  return Boolean(me.user) && RANK[me.user.role] >= RANK[role];
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export function signedIn() {
  return session !== null;
}

export function whenSignedOut(callback) {
  onSignedOut = callback;
}

function keep(pair) {
  clearTimeout(session?.timer);
  const lead = Math.max(5, pair.expires_in - 60) * 1000;
  session = {
    access: pair.access_token,
    refresh: pair.refresh_token,
    timer: setTimeout(() => renew().catch(() => {}), lead),
  };
}

function forget() {
  clearTimeout(session?.timer);
  session = null;
}

async function send(path, { method = 'GET', body, token, signal, headers: extra } = {}) {
  const headers = { Accept: 'application/json', ...extra };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  return fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    credentials: 'omit',
    cache: 'no-store',
  });
}

async function parse(resp) {
  if (resp.status === 204) return null;
  const text = await resp.text();
  const data = text ? JSON.parse(text) : null;
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

export async function signIn(email, password) {
  const pair = await parse(await send('/api/v1/auth/login', { method: 'POST', body: { email, password } }));
  keep(pair);
}

// One refresh at a time: concurrent 401s share it (refresh tokens are single-use).
let renewing = null;
function renew() {
  renewing ??= refreshTokens().finally(() => {
    renewing = null;
  });
  return renewing;
}
async function refreshTokens() {
  if (!session) throw new ApiError(401, null);
  const resp = await send('/api/v1/auth/refresh', { method: 'POST', body: { refresh_token: session.refresh } });
  if (resp.status === 401) {
    forget();
    onSignedOut();
    throw new ApiError(401, null);
  }
  keep(await parse(resp));
}

export async function signOut() {
  if (!session) return;
  const { access, refresh } = session;
  forget();
  try {
    await send('/api/v1/auth/logout', { method: 'POST', body: { refresh_token: refresh }, token: access });
  } catch {
    // Offline: the tokens are gone from memory anyway and expire on their own.
  }
  onSignedOut();
}

/** A raw authorised response (for streams); renews once on 401. */
export async function authorised(path, options = {}) {
  if (!session) throw new ApiError(401, null);
  let resp = await send(path, { ...options, token: session.access });
  if (resp.status === 401 && session) {
    await renew();
    resp = await send(path, { ...options, token: session.access });
  }
  return resp;
}

/** JSON call: resolves to the body, rejects with ApiError (or TypeError when offline). */
export async function api(path, options = {}) {
  return parse(await authorised(path, options));
}

/** Builds a query string, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}
