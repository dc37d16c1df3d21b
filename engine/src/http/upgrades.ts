// The one 'upgrade' listener of the API server. Node hands every request with an Upgrade header to
// the server's 'upgrade' listeners (never to Fastify), and every listener sees every request, so
// WebSocket routes register a handler here instead: the first that takes the request serves it,
// and a request none takes is served as the plain HTTP/1.1 request it also is (boundary.ts).
// Also the pieces every WebSocket route shares: the key (header, the dashboard's session cookie
// with the engine's own Origin, or the subprotocol `bearer.<key>` for browsers, checked before anything else is looked at and never selected, so
// the 101 never echoes it), the request id on the 101, and errors as the JSON envelope.
import type { FastifyInstance } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { FaasError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import type { Services } from '../engine.js';
import type { Router } from './app.js';
import { bearerOf } from './auth.js';
import { authenticateCookie } from './browser.js';
import { serveAsHttp1 } from './boundary.js';
import { logServerError, newRequestId, rawErrorResponse, toFaasError } from './errors.js';

/** Takes the request (returns true) or leaves it to the next handler (false). */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;

const handlers = new WeakMap<FastifyInstance, UpgradeHandler[]>();

export function addUpgradeHandler(app: FastifyInstance, handler: UpgradeHandler): void {
  let list = handlers.get(app);
  if (!list) {
    const mine: UpgradeHandler[] = [];
    handlers.set(app, (list = mine));
    app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      for (const h of mine) if (h(req, socket, head)) return;
      serveAsHttp1(app.server, req, socket, head);
    });
  }
  list.push(handler);
}

/** The key of a WebSocket request: the Authorization header, else a `bearer.<key>` subprotocol. */
export function authenticateUpgrade(s: Services, req: IncomingMessage, protocol: string): Principal {
  const header = bearerOf(req.headers.authorization);
  if (header) return s.keys.authenticate(header);
  const offered = String(req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((p) => p.trim())
    .find((p) => p.startsWith('bearer.'));
  if (offered) return s.keys.authenticate(offered.slice(7));
  // The dashboard's terminal: the session cookie, from a page of the engine's own origin only
  // (browsers always send Origin on a WebSocket; another origin's is refused, browser.ts).
  const byCookie = req.headers.authorization ? undefined : authenticateCookie(s, req, { websocket: true });
  if (byCookie) return byCookie.principal;
  throw new FaasError('unauthorized', `missing API key (Authorization: Bearer <key or token>, or the subprotocols ${protocol} and bearer.<key or token>)`);
}

export interface WebSocketRoute {
  pattern: RegExp;
  /** The subprotocol selected when offered (never a `bearer.` one). */
  protocol: string;
  /** Checks and opens what the socket will carry; returns what to run once the WebSocket is up. */
  open(who: Principal, match: RegExpExecArray, url: URL, req: IncomingMessage): Promise<{ start(ws: WebSocket): void; abandon(): void }>;
}

/** Registers a WebSocket route: auth, then `open`, then the 101; any error before it is the envelope. */
export function addWebSocketRoute(app: FastifyInstance, r: Router, s: Services, route: WebSocketRoute): Set<WebSocket> {
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => (protocols.has(route.protocol) ? route.protocol : false) });
  const ids = new WeakMap<IncomingMessage, string>();
  wss.on('headers', (headers, req) => {
    const id = ids.get(req);
    if (id) headers.push(`X-Request-Id: ${id}`);
  });
  const open = new Set<WebSocket>();
  app.addHook('preClose', async () => {
    for (const ws of open) ws.close(1001, 'the engine is shutting down');
  });
  addUpgradeHandler(app, (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://engine');
    const m = route.pattern.exec(url.pathname);
    if (!m || String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return false;
    const requestId = newRequestId();
    ids.set(req, requestId);
    void (async () => {
      try {
        const who = authenticateUpgrade(s, req, route.protocol);
        const opened = await route.open(who, m, url, req);
        if (socket.destroyed) return opened.abandon();
        wss.handleUpgrade(req, socket, head, (ws) => {
          open.add(ws);
          ws.once('close', () => open.delete(ws));
          opened.start(ws);
        });
      } catch (err) {
        const fe = toFaasError(err);
        logServerError(r.log, fe, err, requestId, `GET ${url.pathname} (WebSocket)`);
        if (!socket.destroyed) socket.end(rawErrorResponse(fe, requestId));
      }
    })();
    return true;
  });
  return open;
}
