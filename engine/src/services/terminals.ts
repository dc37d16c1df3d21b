// Interactive terminals: a client WebSocket bridged to the agent's `faas-pty` upgrade (a raw TCP
// connection carrying [type:1][len:4 BE][payload] frames, spec/agent-protocol.md "Terminal").
//   WS binary            → type 1 (input)        type 2 (output) → WS binary
//   WS text {"resize"}   → type 3 (JSON)         type 4 (exit)   → WS text {"type":"exit"} + close 1000
// Closing either side closes the other; the agent hangs up the terminal when its socket closes.
import { connect, type Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { FaasError } from '../core/errors.js';
import { AGENT_PORT } from '../runtime/agent-client.js';

export const FRAME = { input: 1, output: 2, resize: 3, exit: 4, signal: 5 } as const;

export interface PtyOptions {
  cols: number;
  rows: number;
  command?: string;
}

/**
 * Opens the agent side: resolves with the upgraded socket and any bytes read past the 101.
 * `authorization` is the agent's key header (AgentClient.authorization).
 */
export function openAgentPty(ip: string, opts: PtyOptions, authorization: string | undefined, timeoutMs = 5_000): Promise<{ socket: Socket; rest: Buffer }> {
  const q = new URLSearchParams({ cols: String(opts.cols), rows: String(opts.rows) });
  if (opts.command) q.set('command', opts.command);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: ip, port: AGENT_PORT });
    let head = Buffer.alloc(0);
    const fail = (err: FaasError) => {
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new FaasError('timeout', 'the instance did not open a terminal in time', null)), timeoutMs);
    socket.once('error', (e) => {
      clearTimeout(timer);
      fail(new FaasError('runtime_error', `the instance's agent is unreachable: ${e.message}`, null));
    });
    socket.once('connect', () => {
      const auth = authorization && !/[\r\n]/.test(authorization) ? `Authorization: ${authorization}\r\n` : '';
      socket.write(`GET /v1/pty?${q} HTTP/1.1\r\nHost: ${ip}:${AGENT_PORT}\r\n${auth}Connection: Upgrade\r\nUpgrade: faas-pty\r\n\r\n`);
    });
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 64 * 1024) fail(new FaasError('runtime_error', 'faas-agent sent an oversized answer to the terminal upgrade', null));
        return;
      }
      socket.off('data', onData);
      clearTimeout(timer);
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head.subarray(0, end).toString())?.[1]);
      if (status === 101) return resolve({ socket, rest: head.subarray(end + 4) });
      // An error answer: the JSON body follows the headers (the agent closes after it).
      const body = head.subarray(end + 4).toString();
      let code = 'runtime_error';
      let message = `faas-agent refused the terminal (${status})`;
      try {
        const e = JSON.parse(body).error;
        message = e.message;
        if (e.code === 'invalid_request') code = 'invalid_request';
      } catch {
        /* keep the generic message */
      }
      fail(new FaasError(code as 'invalid_request' | 'runtime_error', message, null));
    };
    socket.on('data', onData);
  });
}

export function frame(type: number, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type;
  out.writeUInt32BE(body.length, 1);
  body.copy(out, 5);
  return out;
}

/** Bridges an open WebSocket and an upgraded agent socket until either side ends. */
export function bridge(ws: WebSocket, agent: Socket, rest: Buffer, onClose: () => void): void {
  let buf = rest;
  let done = false;
  const finish = (code = 1000, reason = '') => {
    if (done) return;
    done = true;
    agent.destroy();
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
    onClose();
  };
  const parse = () => {
    while (buf.length >= 5) {
      const len = buf.readUInt32BE(1);
      if (buf.length < 5 + len) return;
      const type = buf[0];
      const payload = buf.subarray(5, 5 + len);
      buf = buf.subarray(5 + len);
      if (type === FRAME.output) {
        ws.send(payload, { binary: true });
        // Backpressure: stop reading the agent while the client lags (the program then blocks
        // on its terminal, as it would on a slow real one).
        if (ws.bufferedAmount > 1 << 20) {
          agent.pause();
          const resume = setInterval(() => {
            if (done || ws.bufferedAmount < 1 << 18) {
              clearInterval(resume);
              agent.resume();
            }
          }, 10);
        }
      } else if (type === FRAME.exit) {
        let exitCode = -1;
        try {
          exitCode = Number(JSON.parse(payload.toString()).exitCode);
        } catch {
          /* malformed exit frame: report -1 */
        }
        ws.send(JSON.stringify({ type: 'exit', exitCode }), () => finish(1000));
        agent.removeAllListeners('data');
        return;
      }
    }
  };
  agent.on('data', (chunk: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    parse();
  });
  agent.on('close', () => finish(1011, 'terminal connection lost'));
  agent.on('error', () => finish(1011, 'terminal connection lost'));
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) {
      agent.write(frame(FRAME.input, data));
      return;
    }
    let msg: { type?: string; cols?: number; rows?: number; signal?: string };
    try {
      msg = JSON.parse(data.toString());
    } catch {
      return; // unknown control messages are ignored (spec)
    }
    const okDim = (n: unknown) => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 1000;
    if (msg.type === 'resize' && okDim(msg.cols) && okDim(msg.rows)) {
      agent.write(frame(FRAME.resize, JSON.stringify({ cols: msg.cols, rows: msg.rows })));
    }
  });
  ws.on('close', () => finish());
  ws.on('error', () => finish());
  if (buf.length) parse();
}
