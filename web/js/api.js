// api.js: the REST client. Cookie auth: the browser sends roost_session;
// every state-changing request carries X-CSRF-Token (docs/auth.md).

export class ApiError extends Error {
  constructor(status, code, message, field, retryAfter) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfter = retryAfter;
  }
  // true when the request never got an answer (offline, connection refused)
  get network() { return this.status === 0; }
}

let csrfToken = null;
let onUnauthorized = null;

export function setCsrf(t) { csrfToken = t; }
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)roost_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : csrfToken || '';
}

export async function api(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store', signal: opts.signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrf();
  let res;
  try {
    res = await fetch('/api/v1' + path, init);
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'NETWORK', 'No connection to the server');
  }
  let doc = null;
  if (res.status !== 204) {
    const text = await res.text().catch(() => '');
    try { doc = text ? JSON.parse(text) : null; } catch { doc = null; }
  }
  if (res.ok) return doc;
  const e = (doc && doc.error) || {};
  const err = new ApiError(res.status, e.code || `HTTP_${res.status}`, e.message || res.statusText,
    e.field, Number(res.headers.get('Retry-After')) || 0);
  if (res.status === 401 && !opts.noAuthHandler && onUnauthorized) onUnauthorized(err);
  throw err;
}

export const get = (p, o) => api('GET', p, undefined, o);
export const post = (p, b, o) => api('POST', p, b, o);
export const patch = (p, b, o) => api('PATCH', p, b, o);
export const put = (p, b, o) => api('PUT', p, b, o);
export const del = (p, o) => api('DELETE', p, undefined, o);

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, v);
  const s = u.toString();
  return s ? '?' + s : '';
}
