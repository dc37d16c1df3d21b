// Port forwards: one client WebSocket carries one TCP connection to an instance port
// (GET /v1/instances/{id}/tcp/{port}, spec/openapi.yaml openPortForward). The same piping carries
// a remote tunnel's connections (services/tunnels.ts). Lifecycle of one connection:
//   connect to <instance ip>:<port>, else through the agent to its loopback (refused both ways →
//   port_not_listening, before the 101) → 101 →
//   bytes both ways as binary messages; a side's end of stream (FIN) → text {"type":"end"} and a
//   half-close on the other side → both ended: close 1000. A reset or error on either side: close
//   4001 and a reset (RST) of the TCP side, so the peer learns it failed rather than finished.
// Back-pressure both ways: the TCP side is paused while the WebSocket has more than HIGH bytes
// unsent; the WebSocket is paused while the TCP socket's buffer is full. Memory stays bounded.
import { connect, type Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { FaasError } from '../core/errors.js';
import { openAgentUpgrade } from '../runtime/agent-upgrade.js';

const HIGH = 1 << 20;
const LOW = 256 << 10;
export const CLOSE_RESET = 4001;
const END = JSON.stringify({ type: 'end' });

/** Connects to a port of an instance from the engine (root: the firewall lets root reach sandboxes). */
export function connectPort(ip: string, port: number, timeoutMs = 10_000): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: ip, port, allowHalfOpen: true });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new FaasError('timeout', `port ${port} of the instance did not accept the connection within ${timeoutMs / 1000} s`, { port }));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.pause(); // until pipe() attaches: nothing the instance sends first is lost
      resolve(socket);
    });
    socket.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'ECONNREFUSED' || e.code === 'ECONNRESET') {
        reject(new FaasError('port_not_listening', `nothing in the instance listens on port ${port}; start the server first, or check the port`, { port }));
      } else {
        reject(new FaasError('runtime_error', `could not connect to port ${port} of the instance: ${e.message}`, { port }));
      }
    });
  });
}

/**
 * A connection to an instance port: at the instance's address, or — when nothing listens there —
 * through the agent to the sandbox's loopback (spec/agent-protocol.md › Tunnels, `GET /v1/tcp`),
 * for servers bound to 127.0.0.1 only, the default of many dev servers. Refused both ways:
 * port_not_listening. `authorization` is the agent's key header.
 */
export async function reachPort(ip: string, port: number, authorization: string | undefined): Promise<{ socket: Socket; rest: Buffer }> {
  try {
    return { socket: await connectPort(ip, port), rest: Buffer.alloc(0) };
  } catch (err) {
    if (!(err instanceof FaasError) || err.code !== 'port_not_listening') throw err;
    try {
      return await openAgentUpgrade(ip, `/v1/tcp?port=${port}`, 'faas-tunnel', authorization, 'a forward');
    } catch (viaAgent) {
      // not_found: nothing on the loopback either (or an agent older than this route).
      if (viaAgent instanceof FaasError && viaAgent.code === 'not_found') throw err;
      throw viaAgent;
    }
  }
}

/**
 * Carries `socket` over `ws` until both directions have ended or either side fails; `rest` is what
 * was already read from the socket. `onClose` runs once, when it is all over.
 */
export function pipe(ws: WebSocket, socket: Socket, rest: Buffer, onClose: () => void): void {
  let done = false;
  let sentEnd = false;
  let gotEnd = false;
  const finish = (code: number, reason = '') => {
    if (done) return;
    done = true;
    if (code === 1000) socket.end(() => socket.destroy());
    else socket.resetAndDestroy();
    if (ws.readyState === ws.OPEN) ws.close(code, reason);
    else if (ws.readyState === ws.CONNECTING) ws.terminate();
    onClose();
  };
  const bothEnded = () => {
    if (sentEnd && gotEnd && socket.writableFinished) finish(1000);
  };

  // TCP → WebSocket.
  let paused = false;
  const toClient = (chunk: Buffer) => {
    ws.send(chunk, { binary: true }, () => {
      if (paused && !done && ws.bufferedAmount < LOW) {
        paused = false;
        socket.resume();
      }
    });
    if (!paused && ws.bufferedAmount > HIGH) {
      paused = true;
      socket.pause();
    }
  };
  if (rest.length) toClient(rest);
  socket.on('data', toClient);
  socket.on('end', () => {
    if (done) return;
    sentEnd = true;
    ws.send(END, () => bothEnded());
  });
  socket.on('error', () => finish(CLOSE_RESET, 'the connection in the instance was reset'));
  socket.on('close', (hadError) => finish(hadError ? CLOSE_RESET : 1000));
  socket.on('finish', () => bothEnded());
  socket.resume();

  // WebSocket → TCP.
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (done) return;
    if (isBinary) {
      if (gotEnd) return; // bytes after the client's own end: ignored, as TCP would refuse them
      if (!socket.write(data)) {
        ws.pause();
        socket.once('drain', () => ws.resume());
      }
      return;
    }
    let msg: { type?: unknown } | undefined;
    try {
      msg = JSON.parse(data.toString());
    } catch {
      return; // unknown control messages are ignored (spec)
    }
    if (msg?.type === 'end' && !gotEnd) {
      gotEnd = true;
      socket.end();
    }
  });
  // The client went away: a clean close ends the connection, anything else resets it.
  ws.on('close', (code: number) => finish(code === 1000 ? 1000 : CLOSE_RESET));
  ws.on('error', () => finish(CLOSE_RESET));
}
