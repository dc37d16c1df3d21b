// Port forwards and tunnels (the seed's NetworkOperations.portForward / createTunnel).
// Each TCP connection travels in its own WebSocket through the engine (spec/openapi.yaml, tag
// `network`): binary messages carry the bytes, a text {"type":"end"} is a half-close (FIN), close
// 1000 means both directions ended, close 4001 means the other side reset.
//   portForward:  local listener on 127.0.0.1 → one WS `…/tcp/{port}` per accepted connection.
//   createTunnel({direction:'remote'}): WS `…/tunnels/{port}` announces each connection made
//     inside the instance; we connect to localHost:localPort and claim it with WS
//     `…/tunnels/{port}/connections/{id}`.
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import WebSocket from 'ws';
import './../core/dispose.js';
import { errorFromBody, InvalidRequestError, NetworkError, networkError, type FaaSError } from '../core/errors.js';
import type { HttpTransport } from '../core/http.js';
import { seg, type IdRef } from '../core/ids.js';

const HIGH = 1 << 20;
const LOW = 256 << 10;
const CLOSE_RESET = 4001;
const END = JSON.stringify({ type: 'end' });

/**
 * Messages that arrived before the socket was piped: the engine starts sending as soon as the
 * connection is up (a tunnel connection's first bytes come while we still connect locally).
 */
const early = new WeakMap<WebSocket, { messages: [Buffer, boolean][]; listener: (data: Buffer, isBinary: boolean) => void }>();

/** The typed error of a refused WebSocket upgrade (the engine's JSON envelope). */
export function refusal(response: IncomingMessage): Promise<FaaSError> {
  return new Promise((resolve) => {
    let text = '';
    response.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    response.on('end', () => {
      let body: { error?: Record<string, unknown> } | undefined;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      resolve(errorFromBody({ requestId: response.headers['x-request-id'] as string | undefined, ...body?.error }, response.statusCode));
    });
  });
}

/** Stops queueing early messages; returns those queued, for the socket's real reader to handle first. */
function takeEarly(ws: WebSocket): [Buffer, boolean][] {
  const before = early.get(ws);
  if (!before) return [];
  ws.off('message', before.listener);
  early.delete(ws);
  return before.messages;
}

/** Opens a WebSocket on an engine route; refusals before the upgrade become the usual typed errors. */
export async function openEngineSocket(http: HttpTransport, path: string, protocol: string): Promise<WebSocket> {
  const socket = new WebSocket(http.url(path).replace(/^http/, 'ws'), [protocol], {
    headers: await http.authHeaders(),
    // A zero mask: ws then skips masking here and unmasking in the engine, which in plain JS cost
    // most of the upload throughput (15 vs 100+ MiB/s, bench/port-forward.mjs). Masking protects
    // proxies from data a browser page chose; these bytes are the caller's own.
    generateMask: (mask: Buffer) => void mask.fill(0),
    perMessageDeflate: false,
  });
  const messages: [Buffer, boolean][] = [];
  const listener = (data: Buffer, isBinary: boolean) => void messages.push([data, isBinary]);
  early.set(socket, { messages, listener });
  socket.on('message', listener);
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(socket));
    socket.once('unexpected-response', (_request, response) => void refusal(response).then(reject));
    socket.once('error', (err) => reject(networkError(`connection to the engine failed: ${err.message}`, err)));
  });
}

/** Carries a local TCP socket over an engine WebSocket until both directions end or one side fails. */
export function pipeSocket(ws: WebSocket, sock: Socket, onClose: () => void = () => undefined): void {
  let done = false;
  let sentEnd = false;
  let gotEnd = false;
  const finish = (code: number) => {
    if (done) return;
    done = true;
    if (code === 1000) sock.end(() => sock.destroy());
    else sock.resetAndDestroy();
    if (ws.readyState === WebSocket.OPEN) ws.close(code);
    else ws.terminate();
    onClose();
  };
  const bothEnded = () => {
    if (sentEnd && gotEnd && sock.writableFinished) finish(1000);
  };
  let paused = false;
  sock.on('data', (chunk: Buffer) => {
    ws.send(chunk, { binary: true }, () => {
      if (paused && !done && ws.bufferedAmount < LOW) {
        paused = false;
        sock.resume();
      }
    });
    if (!paused && ws.bufferedAmount > HIGH) {
      paused = true;
      sock.pause();
    }
  });
  sock.on('end', () => {
    if (done) return;
    sentEnd = true;
    ws.send(END, () => bothEnded());
  });
  sock.on('finish', () => bothEnded());
  sock.on('error', () => finish(CLOSE_RESET));
  sock.on('close', (hadError) => finish(hadError ? CLOSE_RESET : 1000));
  const onMessage = (data: Buffer, isBinary: boolean) => {
    if (done) return;
    if (isBinary) {
      if (gotEnd) return;
      if (!sock.write(data)) {
        ws.pause();
        sock.once('drain', () => ws.resume());
      }
      return;
    }
    try {
      if (JSON.parse(data.toString()).type === 'end' && !gotEnd) {
        gotEnd = true;
        sock.end();
      }
    } catch {
      /* unknown control messages are ignored */
    }
  };
  for (const [data, isBinary] of takeEarly(ws)) onMessage(data, isBinary);
  ws.on('message', onMessage);
  ws.on('close', (code: number) => finish(code === 1000 ? 1000 : CLOSE_RESET));
  ws.on('error', () => finish(CLOSE_RESET));
  sock.resume();
}

function checkPort(name: string, port: number, min: number): void {
  if (!Number.isInteger(port) || port < min || port > 65535) {
    throw new InvalidRequestError(`${name} must be an integer from ${min} to 65535, not ${port}`, { code: 'invalid_request', details: { field: name } });
  }
}

/** A set of live connections that `close()` resets together. */
class Connections {
  private readonly live = new Set<{ sock: Socket; ws?: WebSocket }>();
  add(sock: Socket): { sock: Socket; ws?: WebSocket } {
    const c = { sock };
    this.live.add(c);
    sock.once('close', () => this.live.delete(c));
    return c;
  }
  get size(): number {
    return this.live.size;
  }
  closeAll(): void {
    for (const c of this.live) {
      c.ws?.terminate();
      c.sock.destroy();
    }
    this.live.clear();
  }
}

/**
 * A local listener whose connections reach a port of an instance. Events: `connection`
 * (a local client connected), `connectionError` (FaaSError: one connection could not be carried,
 * e.g. nothing listens on the port any more; the local client is reset).
 */
export class PortForward extends EventEmitter {
  readonly localHost = '127.0.0.1';
  private readonly connections = new Connections();
  private closing?: Promise<void>;

  constructor(
    private readonly server: Server,
    readonly instanceId: string,
    readonly localPort: number,
    readonly remotePort: number,
  ) {
    super();
  }

  /** `127.0.0.1:<localPort>`. */
  get localAddress(): string {
    return `${this.localHost}:${this.localPort}`;
  }

  /** Connections being carried right now. */
  get activeConnections(): number {
    return this.connections.size;
  }

  /** @internal */
  track(sock: Socket): { sock: Socket; ws?: WebSocket } {
    return this.connections.add(sock);
  }

  /** Stops listening and closes every connection it carries. */
  close(): Promise<void> {
    this.closing ??= new Promise((resolve) => {
      this.server.close(() => resolve());
      this.connections.closeAll();
    });
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

export interface TunnelConfig {
  /** `remote`: code in the instance connects to `remotePort` and reaches `localHost:localPort` here (`ssh -R`). `local`: a port forward (`ssh -L`). */
  direction: 'remote' | 'local';
  remotePort: number;
  /** Where connections go on this side (remote tunnels); default 127.0.0.1. */
  localHost?: string;
  /** The port they reach here (remote), or the local port to listen on (local; 0 = any). */
  localPort: number;
}

/** An open tunnel. Events: `connection`, `connectionError` (FaaSError), `close`. */
export class Tunnel extends EventEmitter {
  private readonly connections = new Connections();
  /** Resolves when the tunnel has closed (by `close()` or because the instance went away). */
  readonly closed: Promise<void>;

  constructor(
    readonly direction: 'remote' | 'local',
    readonly instanceId: string,
    readonly remotePort: number,
    readonly localHost: string,
    readonly localPort: number,
    private readonly control: WebSocket | PortForward,
  ) {
    super();
    if (control instanceof PortForward) {
      control.on('connection', () => this.emit('connection'));
      control.on('connectionError', (e) => this.emit('connectionError', e));
      this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    } else {
      this.closed = new Promise((resolve) => control.once('close', () => (this.emit('close'), resolve())));
      control.on('error', () => undefined); // surfaced as 'close'
    }
  }
  private resolveClosed?: () => void;

  /** @internal */
  track(sock: Socket): { sock: Socket; ws?: WebSocket } {
    return this.connections.add(sock);
  }

  /** Stops the tunnel and closes the connections it carries. */
  async close(): Promise<void> {
    if (this.control instanceof PortForward) {
      await this.control.close();
      this.resolveClosed?.();
      this.emit('close');
      return;
    }
    this.connections.closeAll();
    if (this.control.readyState === WebSocket.OPEN) this.control.close(1000);
    else this.control.terminate();
    await this.closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * portForward and createTunnel of the seed's NetworkOperations (`client.network`). The HTTP
 * services half (exposeHttp…) lives beside it; NetworkOperations is both.
 */
export class PortForwardOperations {
  constructor(private readonly http: HttpTransport) {}

  /**
   * Listens on 127.0.0.1:`localPort` (0 = any free port; see `localPort` on the result) and carries
   * each connection to `remotePort` in the instance. Asks the engine first, so a port where nothing
   * listens fails here with a NetworkError (`port_not_listening`).
   */
  async portForward(instance: IdRef, localPort: number, remotePort: number): Promise<PortForward> {
    checkPort('localPort', localPort, 0);
    checkPort('remotePort', remotePort, 1);
    const id = seg(instance);
    const path = `/v1/instances/${id}/tcp/${remotePort}`;
    await this.http.request({ method: 'GET', path });
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new NetworkError(`cannot listen on 127.0.0.1:${localPort}: ${e.code ?? e.message}; choose another local port, or 0 for any`, { code: 'local_port_unavailable', cause: e })),
      );
      server.listen(localPort, '127.0.0.1', () => resolve());
    });
    const forward = new PortForward(server, decodeURIComponent(id), (server.address() as { port: number }).port, remotePort);
    server.on('connection', (sock: Socket) => {
      const c = forward.track(sock);
      forward.emit('connection');
      openEngineSocket(this.http, path, 'faas-tcp').then(
        (ws) => {
          c.ws = ws;
          if (sock.destroyed) return ws.terminate();
          pipeSocket(ws, sock);
        },
        (err: FaaSError) => {
          sock.resetAndDestroy();
          if (forward.listenerCount('connectionError')) forward.emit('connectionError', err);
        },
      );
    });
    return forward;
  }

  /** A remote tunnel (`ssh -R`), or with `direction: 'local'` a port forward. */
  async createTunnel(instance: IdRef, config: TunnelConfig): Promise<Tunnel> {
    const localHost = config.localHost ?? '127.0.0.1';
    if (config.direction === 'local') {
      const forward = await this.portForward(instance, config.localPort, config.remotePort);
      return new Tunnel('local', forward.instanceId, forward.remotePort, forward.localHost, forward.localPort, forward);
    }
    if (config.direction !== 'remote') {
      throw new InvalidRequestError(`direction must be 'remote' or 'local', not ${JSON.stringify(config.direction)}`, { code: 'invalid_request', details: { field: 'direction' } });
    }
    checkPort('remotePort', config.remotePort, 1);
    checkPort('localPort', config.localPort, 1);
    const id = seg(instance);
    const base = `/v1/instances/${id}/tunnels/${config.remotePort}`;
    const control = await openEngineSocket(this.http, base, 'faas-tunnel');
    const tunnel = new Tunnel('remote', decodeURIComponent(id), config.remotePort, localHost, config.localPort, control);
    const onAnnouncement = (data: Buffer, isBinary: boolean) => {
      if (isBinary) return;
      let msg: { type?: unknown; id?: unknown };
      try {
        msg = JSON.parse(data.toString());
      } catch {
        return;
      }
      if (msg.type !== 'connection' || typeof msg.id !== 'string') return;
      tunnel.emit('connection');
      // Connect here and claim there at once; if either fails the other is reset.
      const sock = connect({ host: localHost, port: config.localPort, allowHalfOpen: true });
      sock.pause();
      const c = tunnel.track(sock);
      const local = new Promise<void>((resolve, reject) => {
        sock.once('connect', () => resolve());
        sock.once('error', (e) => reject(networkError(`tunnel: cannot connect to ${localHost}:${config.localPort}: ${e.message}`, e)));
      });
      const remote = openEngineSocket(this.http, `${base}/connections/${msg.id}`, 'faas-tunnel');
      Promise.all([local, remote]).then(
        ([, ws]) => {
          c.ws = ws;
          pipeSocket(ws, sock);
        },
        (err: FaaSError) => {
          sock.destroy();
          void remote.then((ws) => ws.close(CLOSE_RESET), () => undefined);
          if (tunnel.listenerCount('connectionError')) tunnel.emit('connectionError', err);
        },
      );
    };
    for (const [data, isBinary] of takeEarly(control)) onAnnouncement(data, isBinary);
    control.on('message', onAnnouncement);
    return tunnel;
  }
}
