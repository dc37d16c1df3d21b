// GET /v1/instances/{id}/terminal: a WebSocket. Node hands upgrade requests to the server's
// 'upgrade' listener, not to Fastify, so this file checks auth, the path and the query itself and
// answers errors with the same JSON envelope before upgrading. A plain GET (no upgrade) reaches
// the Fastify route and is told to upgrade.
import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { FaasError, invalid, notFound } from '../../core/errors.js';
import { owns, type Principal } from '../../core/principal.js';
import { assertCan } from '../../core/instance-states.js';
import type { Services } from '../../engine.js';
import { bridge, openAgentPty } from '../../services/terminals.js';
import type { Router } from '../app.js';
import { envelope, toFaasError } from '../errors.js';
import { bearerOf } from '../auth.js';

const ROUTE = /^\/v1\/instances\/(inst_[a-z0-9]+)\/terminal$/;
export const terminals = { open: 0 };

export function registerTerminalRoutes(app: FastifyInstance, r: Router, s: Services): void {
  r.op('openTerminal', async () => {
    throw invalid('this route is a WebSocket: send Connection: Upgrade and Upgrade: websocket');
  });

  const wss = new WebSocketServer({
    noServer: true,
    // Browsers authenticate with the subprotocol `bearer.<key>`; pick `faas-terminal` if offered.
    handleProtocols: (protocols) => (protocols.has('faas-terminal') ? 'faas-terminal' : [...protocols][0] ?? false),
  });
  // The same keys and tokens as every other route: the header, else a `bearer.<key or token>`
  // subprotocol (browsers cannot set headers on a WebSocket).
  const authenticate = (req: IncomingMessage): Principal => {
    const header = bearerOf(req.headers.authorization);
    if (header) return s.keys.authenticate(header);
    const offered = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim())
      .find((p) => p.startsWith('bearer.'));
    if (offered) return s.keys.authenticate(offered.slice(7));
    throw new FaasError('unauthorized', 'missing API key (Authorization: Bearer <key>, or the subprotocol bearer.<key>)');
  };

  const open = new Set<{ close(code?: number, reason?: string): void }>();
  app.addHook('preClose', async () => {
    for (const ws of open) ws.close(1001, 'the engine is shutting down');
  });

  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const requestId = `req_${randomBytes(8).toString('hex')}`;
    const url = new URL(req.url ?? '/', 'http://engine');
    const m = ROUTE.exec(url.pathname);
    void (async () => {
      try {
        if (!m) throw new FaasError('not_found', `no WebSocket route ${url.pathname}`);
        const who = authenticate(req);
        if (String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket') throw invalid('only Upgrade: websocket is supported');
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
        refuse(socket, toFaasError(err), requestId);
      }
    })();
  });
}

function dim(v: string | null, dflt: number, name: string): number {
  if (v === null) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw invalid(`querystring/${name} must be an integer from 1 to 1000`, { field: `/${name}` });
  return n;
}

/** An ordinary HTTP error answer on the raw socket, in the API's error envelope. */
function refuse(socket: Duplex, err: FaasError, requestId: string): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(envelope(err.code, err.message, err.details, requestId));
  socket.end(
    `HTTP/1.1 ${err.status} ${err.code}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
  );
}
