// What a browser session (cookie) may do, decided in one place for HTTP routes and WebSocket
// upgrades alike (docs/security/web.md):
// - the cookie `faas_session` is a random id of a server-side session (services/web-sessions.ts),
//   HttpOnly (no script reads it) and SameSite=Strict (no other site's page sends it);
// - a request it authenticates must come from this engine's own origin: an `Origin` header, when
//   sent, equals the request's own `http(s)://Host`, and `Sec-Fetch-Site` is not cross-site or
//   same-site (a sibling host such as an exposed service's `*.localhost` is another origin);
// - a state-changing request (POST, PUT, PATCH, DELETE) also carries the session's CSRF token in
//   `X-Faas-Csrf`: a form or a script of another origin can neither read that token nor set a
//   custom header without a CORS preflight the engine never grants;
// - a WebSocket upgrade must carry an `Origin` equal to the engine's own (browsers always send it).
// A refused use is `401 unauthorized` with `details.reason` (`cross_origin`, `csrf`,
// `session_ended`): the cookie does not authenticate that request, as no credential would.
import type { IncomingMessage } from 'node:http';
import { FaasError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import type { KeyService } from '../services/keys.js';
import { csrfMatches, type WebSession, type WebSessions } from '../services/web-sessions.js';

export const SESSION_COOKIE = 'faas_session';
export const CSRF_HEADER = 'x-faas-csrf';
const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Headers of every HTML page the engine serves: same-origin everything, no inline script, no framing. */
export const PAGE_HEADERS: Record<string, string> = {
  'content-security-policy': [
    "default-src 'self'",
    "script-src 'self'",
    // Redoc and xterm.js set element styles from script; styles never run code.
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  // Not no-referrer: under it a form post's Origin is `null`, and the login's origin check needs it.
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
};

/** The value of one cookie of a Cookie header. */
export function cookieOf(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim() || undefined;
  }
  return undefined;
}

/** The origins this request was addressed to (`http://Host`, `https://Host` behind a TLS proxy). */
export function ownOrigins(req: IncomingMessage): string[] {
  const host = String(req.headers.host ?? '');
  return host ? [`http://${host}`.toLowerCase(), `https://${host}`.toLowerCase()] : [];
}

/** False when the browser says the request comes from a page of another origin. */
export function fromOwnOrigin(req: IncomingMessage, { originRequired = false } = {}): boolean {
  const site = String(req.headers['sec-fetch-site'] ?? '');
  if (site === 'cross-site' || site === 'same-site') return false;
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== 'null') return ownOrigins(req).includes(String(origin).toLowerCase());
  if (originRequired) return false;
  // No usable Origin: a same-origin GET sends none; a form post may say `null` (privacy), and then
  // the browser's Sec-Fetch-Site (a header no page can set) must say same-origin.
  return origin === undefined || site === 'same-origin';
}

export interface CookieAuth {
  principal: Principal;
  session: WebSession;
}

const expired = () =>
  new FaasError('unauthorized', 'the browser session has ended (logged out, expired or the engine restarted): log in again at /login', { reason: 'session_ended' });

/**
 * The principal of the request's session cookie, or undefined when it has none. Throws 401 for a
 * cookie that names no live session and 403 for a use the rules above refuse.
 */
export function authenticateCookie(
  deps: { keys: KeyService; webSessions: WebSessions },
  req: IncomingMessage,
  opts: { websocket?: boolean } = {},
): CookieAuth | undefined {
  const id = cookieOf(req.headers.cookie, SESSION_COOKIE);
  if (!id) return undefined;
  const session = deps.webSessions.get(id);
  if (!session) throw expired();
  if (!fromOwnOrigin(req, { originRequired: opts.websocket })) {
    throw new FaasError('unauthorized', "a browser session is accepted only from this engine's own pages (the request came from another origin)", { reason: 'cross_origin' });
  }
  if (!opts.websocket && MUTATING.has(String(req.method)) && !csrfMatches(session, headerOf(req, CSRF_HEADER))) {
    throw new FaasError('unauthorized', `a change made with the browser session needs its CSRF token in ${CSRF_HEADER} (GET /v1/session gives it)`, { reason: 'csrf' });
  }
  try {
    return { principal: deps.keys.authenticate(session.secret), session };
  } catch (err) {
    // The key was revoked or the token expired since the login: the session ends with it.
    deps.webSessions.delete(id);
    throw err;
  }
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Set-Cookie of a new session (Secure when the page was reached over https). */
export function sessionCookie(id: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`;
}

export const clearedCookie = `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;

/** Where a login may go afterwards: only the engine's own pages, never another host. */
export function safeNext(next: unknown): string {
  const s = typeof next === 'string' ? next : '';
  return /^\/(docs|dashboard)(?:[/?#][^\\\s]*)?$/.test(s) && !s.startsWith('//') ? s : '/dashboard';
}
