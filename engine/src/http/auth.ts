// Bearer API key or token on every route but the public ones; the principal it stands for is put on
// the request for the ownership guard (ownership.ts) and the routes. /docs also takes HTTP Basic
// (any user, the key or token as password). Without either, a browser session cookie (browser.ts)
// authenticates, under the same-origin and CSRF rules written there.
import type { FastifyRequest } from 'fastify';
import { FaasError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import type { KeyService } from '../services/keys.js';
import type { WebSession, WebSessions } from '../services/web-sessions.js';
import { authenticateCookie } from './browser.js';

// Public: health, the login page and the login itself, and the dashboard's bundle (no secret in it).
// (Paths public whatever the method, so a wrong method there is still 405, not 401.)
const PUBLIC = new Set(['/v1/health', '/login']);
const PUBLIC_PREFIX = '/dashboard/assets/';
const SESSION_PROTECTED = new Set(['GET', 'HEAD', 'DELETE']);

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
    /** The browser session when the cookie authenticated this request. */
    webSession?: WebSession;
  }
}

/** The bearer value of `Authorization: Bearer …`, or undefined. */
export function bearerOf(header: string | undefined): string | undefined {
  const [scheme, value] = (header ?? '').split(' ', 2);
  return scheme?.toLowerCase() === 'bearer' && value ? value : undefined;
}

export function makeAuth(keys: KeyService, webSessions: WebSessions) {
  return (req: FastifyRequest): void => {
    const path = req.url.split('?')[0];
    // /v1/session: the login (POST) is public, and so is a method it does not serve (405 follows);
    // reading or ending a session needs the session (GET, HEAD, DELETE).
    if (PUBLIC.has(path) || (path === '/v1/session' && !SESSION_PROTECTED.has(req.method))) return;
    if (path.startsWith(PUBLIC_PREFIX) && !path.slice(PUBLIC_PREFIX.length).includes('/')) return;
    const header = req.headers.authorization ?? '';
    let value = bearerOf(header);
    if (!value && path.startsWith('/docs') && header.toLowerCase().startsWith('basic ')) {
      const decoded = Buffer.from(header.slice(6), 'base64').toString();
      value = decoded.slice(decoded.indexOf(':') + 1) || undefined;
    }
    if (!value && !header) {
      const byCookie = authenticateCookie({ keys, webSessions }, req.raw);
      if (byCookie) {
        req.principal = byCookie.principal;
        req.webSession = byCookie.session;
        return;
      }
    }
    if (!value) {
      throw new FaasError('unauthorized', header ? 'the API key or token is not valid for this engine' : MISSING_KEY, null);
    }
    req.principal = keys.authenticate(value);
  };
}

export const MISSING_KEY =
  'missing API key: send Authorization: Bearer <key> (`faas key show` prints the key; the engine keeps its first one in credentials.json of its state directory), or log in at /login in a browser';

/** The caller; every authenticated route has one (health has none and never asks). */
export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new FaasError('unauthorized', 'missing API key: send Authorization: Bearer <key>');
  return req.principal;
}
