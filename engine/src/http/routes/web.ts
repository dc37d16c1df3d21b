// The browser surfaces: the login page (a plain form, no script), browser sessions, the
// dashboard's page and its bundle (built from web/ into web/dist at install time). The rules a
// session cookie lives by are in ../browser.ts; docs/dashboard.md and docs/security/web.md.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FaasError, forbidden, invalid } from '../../core/errors.js';
import type { Services } from '../../engine.js';
import type { Router } from '../app.js';
import { principalOf } from '../auth.js';
import { clearedCookie, cookieOf, fromOwnOrigin, PAGE_HEADERS, safeNext, SESSION_COOKIE, sessionCookie } from '../browser.js';

const FORM = 'application/x-www-form-urlencoded';
/** engine/dist/src/http/routes → the repository's web/dist. */
const WEB_DIST = fileURLToPath(new URL('../../../../../web/dist/', import.meta.url));
const ERRORS: Record<string, string> = {
  invalid: 'That key or token is not valid for this engine.',
  limited: 'Too many failed attempts from this address: wait a few minutes and try again.',
  origin: 'The login came from another site and was refused: open this page directly.',
  ended: 'Your session has ended: log in again.',
};

/** Form posts are taken by the login route only; anywhere else the type stays unsupported. */
export function registerFormParser(app: FastifyInstance): void {
  app.addContentTypeParser(FORM, { parseAs: 'string', bodyLimit: 8192 }, (req, body, done) => {
    if (req.routeOptions.url !== '/v1/session') return done(invalid(`this route does not take ${FORM}`), undefined);
    done(null, Object.fromEntries(new URLSearchParams(String(body))));
  });
}

/** Whether an unauthenticated request is a person's browser opening a page (→ 303 to /login). */
export function loginRedirect(req: FastifyRequest, path: string, err: unknown): boolean {
  return (
    (req.method === 'GET' || req.method === 'HEAD') &&
    (path === '/docs' || path === '/dashboard') &&
    err instanceof FaasError &&
    err.status === 401 &&
    !req.headers.authorization &&
    String(req.headers.accept ?? '').includes('text/html')
  );
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function loginPage(next: string, error: string | undefined): string {
  const message = error && ERRORS[error] ? `<p class="error" role="alert">${ERRORS[error]}</p>` : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>faas — log in</title><link rel="stylesheet" href="/dashboard/assets/login.css"></head>
<body><main class="login"><h1>faas</h1>
<form method="post" action="/v1/session">${message}
<label for="key">API key or token</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus maxlength="1024">
<input type="hidden" name="next" value="${escapeHtml(next)}">
<button type="submit">Log in</button></form>
<section class="hint"><h2>Where is my key?</h2>
<p>On the engine's machine, <code>faas key show</code> prints the key the CLI uses. The engine writes its first admin key to
<code>credentials.json</code> in its state directory (<code>$FAAS_STATE_DIR</code>, <code>/var/lib/faas</code> by default; field <code>apiKey</code>).
An admin can make more with <code>faas key create NAME</code>; a short-lived token from <code>faas token create</code> works too.</p>
<p>The key stays in the engine: this browser keeps only a session cookie, which a page of another site cannot use.</p></section>
</main></body></html>`;
}

function sendPage(reply: FastifyReply, html: string, status = 200) {
  return reply.code(status).headers(PAGE_HEADERS).type('text/html; charset=utf-8').send(html);
}

export function registerWebRoutes(r: Router, s: Services): void {
  r.op('getLoginPage', async (req, reply) => {
    const q = req.query as { next?: string; error?: string };
    return sendPage(reply, loginPage(safeNext(q.next), q.error));
  });

  r.op('createSession', async (req, reply) => {
    const form = String(req.headers['content-type'] ?? '').startsWith(FORM);
    const body = req.body as { key: string; next?: string };
    const next = safeNext(body.next);
    const back = (error: string) => reply.code(303).header('location', `/login?error=${error}&next=${encodeURIComponent(next)}`).send();
    // Login CSRF: another site's page must not log this browser in (as the attacker's key).
    if (!fromOwnOrigin(req.raw)) {
      if (form) return back('origin');
      throw forbidden('a login is accepted only from this engine\'s own login page (the request came from another origin)', { reason: 'cross_origin' });
    }
    const address = req.ip;
    const wait = s.loginLimiter.retryAfter(address);
    if (wait > 0) {
      if (form) return back('limited');
      throw new FaasError('resource_limit', 'too many failed logins from this address; wait and try again', { reason: 'too_many_logins' }, { status: 429, retryAfterSeconds: wait });
    }
    let principal;
    try {
      principal = s.keys.authenticate(body.key);
    } catch (err) {
      s.loginLimiter.fail(address);
      if (form) return back('invalid');
      throw err;
    }
    const session = s.webSessions.create(body.key, principal.keyId);
    const secure = req.protocol === 'https';
    reply.header('set-cookie', sessionCookie(session.id, Math.floor((session.expiresAt - Date.now()) / 1000), secure));
    if (form) return reply.code(303).header('location', next).send();
    return reply.code(201).send(view(session, principal.admin));
  });

  r.op('getSession', async (req) => {
    const who = principalOf(req);
    if (!req.webSession) throw noSession();
    return view(req.webSession, who.admin);
  });

  r.op('deleteSession', async (req, reply) => {
    principalOf(req);
    if (!req.webSession) throw noSession();
    s.webSessions.delete(cookieOf(req.headers.cookie, SESSION_COOKIE)!);
    return reply.code(204).header('set-cookie', clearedCookie).send();
  });

  r.op('getDashboard', async (_req, reply) =>
    sendPage(
      reply,
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>faas dashboard</title><link rel="stylesheet" href="/dashboard/assets/app.css"></head>
<body><div id="app"></div><script type="module" src="/dashboard/assets/app.js"></script></body></html>`,
    ),
  );

  r.op('getDashboardAsset', async (req, reply) => {
    const file = (req.params as { file: string }).file; // the spec's pattern: [a-z0-9-]+.(js|css)
    let content: Buffer;
    try {
      content = await readFile(WEB_DIST + file);
    } catch {
      throw new FaasError('not_found', `no dashboard file ${file}; is the dashboard built? (npm run build -w web)`, { file });
    }
    return reply
      .headers({ 'x-content-type-options': 'nosniff', 'cache-control': 'no-cache' })
      .type(file.endsWith('.js') ? 'application/javascript; charset=utf-8' : 'text/css; charset=utf-8')
      .send(content);
  });
}

const noSession = () => new FaasError('not_found', 'this request has no browser session (it was not authenticated by the session cookie of /login)', null);

function view(session: { keyId: string; csrfToken: string; expiresAt: number }, admin: boolean) {
  return { keyId: session.keyId, admin, csrfToken: session.csrfToken, expiresAt: new Date(session.expiresAt).toISOString() };
}
