// GET /v1/instances/{id}/terminal: a WebSocket. Node hands upgrade requests to the server's
// 'upgrade' listener, not to Fastify, so this file checks auth, the path and the query itself and
// answers errors with the same JSON envelope before upgrading. A plain GET (no upgrade) reaches
// the Fastify route and is told to upgrade; any other upgrade offer (h2c, WebSocket elsewhere) is
// served as the plain HTTP/1.1 request it also is (boundary.ts).
// The key may arrive as the subprotocol `bearer.<key>`: it is checked before anything else is
// looked at (so a caller without it learns nothing, not even whether the route exists), and it is
// never the selected subprotocol (the 101 would echo the credential back).
import type { FastifyInstance } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { invalid, notFound } from '../../core/errors.js';
import { owns, type Principal } from '../../core/principal.js';
import { assertCan } from '../../core/instance-states.js';
import type { Services } from '../../engine.js';
import { bridge, openAgentPty } from '../../services/terminals.js';
import type { Router } from '../app.js';
import { addUpgradeHandler, authenticateUpgrade } from '../upgrades.js';
import { logServerError, newRequestId, rawErrorResponse, toFaasError } from '../errors.js';

const ROUTE = /^\/v1\/instances\/(inst_[a-z0-9]+)\/terminal$/;
export const terminals = { open: 0 };

export function registerTerminalRoutes(app: FastifyInstance, r: Router, s: Services): void {
  r.op('openTerminal', async () => {
    throw invalid('this route is a WebSocket: send Connection: Upgrade and Upgrade: websocket');
  });

  const wss = new WebSocketServer({
    noServer: true,
    // Browsers authenticate with the subprotocol `bearer.<key>` and must offer `faas-terminal` beside
    // it: that is the only protocol ever selected, so the key is never echoed back.
    handleProtocols: (protocols) => (protocols.has('faas-terminal') ? 'faas-terminal' : false),
  });
  // The same keys and tokens as every other route: the header, else a `bearer.<key or token>`
  // subprotocol (browsers cannot set headers on a WebSocket).
  const authenticate = (req: IncomingMessage): Principal => authenticateUpgrade(s, req, 'faas-terminal');

  // The 101 carries the request's id like every other answer.
  const ids = new WeakMap<IncomingMessage, string>();
  wss.on('headers', (headers, req) => {
    const id = ids.get(req);
    if (id) headers.push(`X-Request-Id: ${id}`);
  });

  const open = new Set<{ close(code?: number, reason?: string): void }>();
  app.addHook('preClose', async () => {
    for (const ws of open) ws.close(1001, 'the engine is shutting down');
  });

  addUpgradeHandler(app, (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://engine');
    const m = ROUTE.exec(url.pathname);
    if (!m || String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return false;
    const requestId = newRequestId();
    ids.set(req, requestId);
    void (async () => {
      try {
        const who = authenticate(req);
        const cols = dim(url.searchParams.get('cols'), 80, 'cols');
        const rows = dim(url.searchParams.get('rows'), 24, 'rows');
        const command = url.searchParams.get('command') ?? undefined;
        if (command === '') throw invalid('command must not be empty', { field: '/command' });
        const inst = s.instances.get(m[1]);
        if (!owns(who, inst.owner)) throw notFound('instance', m[1]);
        assertCan(inst, 'exec');
        const { socket: agent, rest } = await openAgentPty(inst.ip!, { cols, rows, command }, s.instances.agents.authorization(inst.ip!));
        if (socket.destroyed) return void agent.destroy();
        wss.handleUpgrade(req, socket, head, (ws) => {
          terminals.open++;
          open.add(ws);
          const release = s.lifetimes.hold(inst.id);
          bridge(ws, agent, rest, () => {
            terminals.open--;
            open.delete(ws);
            release();
          });
        });
      } catch (err) {
        const fe = toFaasError(err);
        logServerError(r.log, fe, err, requestId, `GET ${url.pathname} (WebSocket)`);
        if (!socket.destroyed) socket.end(rawErrorResponse(fe, requestId));
      }
    })();
    return true;
  });
}

function dim(v: string | null, dflt: number, name: string): number {
  if (v === null) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw invalid(`querystring/${name} must be an integer from 1 to 1000`, { field: `/${name}` });
  return n;
}
