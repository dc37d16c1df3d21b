// The dashboard's only way to the engine: same-origin fetches that carry the session cookie, and
// the session's CSRF token on every change (the engine refuses a cookie change without it).
let csrf = '';

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
  }
}

function toLogin() {
  location.assign(`/login?error=ended&next=${encodeURIComponent(location.pathname)}`);
}

export async function loadSession() {
  const r = await fetch('/v1/session', { credentials: 'same-origin' });
  if (r.status === 401) return toLogin();
  const body = await r.json();
  if (!r.ok) throw new ApiError(r.status, body);
  csrf = body.csrfToken;
  return body;
}

/** One API call; JSON in and out unless `raw` (a Blob/File) is given. */
export async function api(method, path, body, { raw } = {}) {
  const headers = {};
  if (method !== 'GET') headers['x-faas-csrf'] = csrf;
  let payload;
  if (raw !== undefined) {
    headers['content-type'] = 'application/octet-stream';
    payload = raw;
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const r = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  if (r.status === 401) toLogin();
  if (r.status === 204) return null;
  const type = r.headers.get('content-type') ?? '';
  const parsed = type.includes('json') ? await r.json() : await r.text();
  if (!r.ok) throw new ApiError(r.status, parsed);
  return parsed;
}

export const list = async (path) => (await api('GET', path + (path.includes('?') ? '&' : '?') + 'limit=200')).data;

export async function logout() {
  await api('DELETE', '/v1/session');
  location.assign('/login');
}

export const q = (s) => encodeURIComponent(s);
