// The edges of the HTTP server that Fastify's routing never sees, held to the same rules as the
// routes (envelope + X-Request-Id on every answer, docs/security/api.md):
// - clientError: Node answers malformed requests, over-long request lines and oversized headers
//   itself, before any request object exists; these answers get the envelope too.
// - Upgrade offers other than the terminal's WebSocket (e.g. `curl --http2`, which offers h2c on
//   cleartext): Node hands every request with an Upgrade header to the 'upgrade' listener once one
//   exists, so without this they would all miss the routes. The request is replayed, minus the
//   offer, into a fresh HTTP/1.1 parser on the same socket: a server may ignore Upgrade (RFC 9110
//   §7.8), and the body (in `head` and the rest of the socket) is read as usual.
// - NUL bytes: no path, argument, environment variable or working directory can hold one; the
//   agent would fail on it late and obscurely, so it is refused here with a clear 400.
import type { FastifyRequest } from 'fastify';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { FaasError, invalid } from '../core/errors.js';
import { newRequestId, rawErrorResponse } from './errors.js';

/** Node's default limit on the request line plus headers (--max-http-header-size). */
const HEADER_LIMIT = 16 * 1024;

export function clientErrorHandler(err: Error & { code?: string; rawPacket?: unknown }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let fe: FaasError;
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    fe = requestLineTooLong(Buffer.isBuffer(err.rawPacket) ? err.rawPacket : undefined)
      ? new FaasError('invalid_request', `the request line (method and URL) is longer than the server accepts (${HEADER_LIMIT / 1024} KiB); send large inputs in a request body`, { limit: HEADER_LIMIT }, { status: 414 })
      : new FaasError('invalid_request', `the request headers are larger than the server accepts (${HEADER_LIMIT / 1024} KiB in all); send fewer or shorter headers`, { limit: HEADER_LIMIT }, { status: 431 });
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    fe = new FaasError('invalid_request', 'the request was not received in time', null, { status: 408 });
  } else {
    fe = new FaasError('invalid_request', `malformed HTTP request (${err.code ?? 'parse error'}); send HTTP/1.1`, null);
  }
  // Only when nothing of an answer has been written yet (as Node's own handler does).
  if ((socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) return void socket.destroy();
  if (socket.writable) socket.end(rawErrorResponse(fe, newRequestId()));
  else socket.destroy();
}

/** Is the overflow still inside the request line? (Then 414, not 431.) */
function requestLineTooLong(packet: Buffer | undefined): boolean {
  if (!packet) return false;
  const text = packet.subarray(0, HEADER_LIMIT + 1024).toString('latin1');
  const eol = text.indexOf('\r\n');
  const first = eol < 0 ? text : text.slice(0, eol);
  if (/^[A-Z]+ \S/.test(first)) return first.length > HEADER_LIMIT / 2 || eol < 0;
  // A later chunk of a request: no line end at all and no `name: value` shape means still the URL.
  return eol < 0 && !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+:/.test(first);
}

const UPGRADE_HEADERS = new Set(['upgrade', 'http2-settings']);

/** Serves a request that offered an Upgrade we do not take as the plain HTTP/1.1 request it also is. */
export function serveAsHttp1(server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  let lines = `${req.method} ${req.url} HTTP/1.1\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (UPGRADE_HEADERS.has(name)) continue;
    let value = raw[i + 1];
    if (name === 'connection') {
      value = value.split(',').map((t) => t.trim()).filter((t) => t && !UPGRADE_HEADERS.has(t.toLowerCase())).join(', ');
      if (!value) continue;
    }
    lines += `${raw[i]}: ${value}\r\n`;
  }
  socket.unshift(Buffer.concat([Buffer.from(`${lines}\r\n`, 'latin1'), head]));
  // A new connection from the server's point of view: it attaches a parser and reads the replay.
  server.emit('connection', socket);
}

/** Throws `invalid_request` naming the first string in the query or JSON body that holds a NUL. */
export function refuseNul(req: FastifyRequest): void {
  const found = findNul(req.query, 'querystring') ?? (isJson(req) ? findNul(req.body, 'body') : undefined);
  if (found) {
    throw invalid(`${found} contains a NUL byte (\\u0000), which no path, argument, environment variable or name can hold; remove it`, {
      field: found.replace(/^(body|querystring)/, '') || '/',
    });
  }
}

// Strings that are data, not names: the bytes a command reads on stdin may be anything.
const DATA_FIELDS = new Set(['stdin']);

function findNul(root: unknown, where: string): string | undefined {
  const stack: [unknown, string][] = [[root, where]];
  while (stack.length) {
    const [v, at] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\0')) return at;
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => stack.push([x, `${at}/${i}`]));
    } else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k.includes('\0')) return `${at}/${k.replace(/\0/g, '\\u0000')}`;
        if (!DATA_FIELDS.has(k)) stack.push([x, `${at}/${k}`]);
      }
    }
  }
  return undefined;
}

const isJson = (req: FastifyRequest) => {
  const type = String(req.headers['content-type'] ?? '');
  return !type || type.startsWith('application/json');
};
