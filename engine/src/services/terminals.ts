// Interactive terminals: a client WebSocket bridged to the agent's `faas-pty` upgrade (a raw TCP
// connection carrying [type:1][len:4 BE][payload] frames, spec/agent-protocol.md "Terminal").
//   WS binary            → type 1 (input)        type 2 (output) → WS binary
//   WS text {"resize"}   → type 3 (JSON)         type 4 (exit)   → WS text {"type":"exit"} + close 1000
// Closing either side closes the other; the agent hangs up the terminal when its socket closes.
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { FRAME, frame, upgradeAgent } from '../runtime/agent-upgrade.js';

export { FRAME, frame };

export interface PtyOptions {
  cols: number;
  rows: number;
  command?: string;
}

/**
 * Opens the agent side: resolves with the upgraded socket and any bytes read past the 101.
 * `authorization` is the agent's key header (AgentClient.authorization).
 */
export async function openAgentPty(ip: string, opts: PtyOptions, authorization: string | undefined, timeoutMs = 5_000): Promise<{ socket: Socket; rest: Buffer }> {
  const q = new URLSearchParams({ cols: String(opts.cols), rows: String(opts.rows) });
  if (opts.command) q.set('command', opts.command);
  return upgradeAgent(ip, `/v1/pty?${q}`, 'faas-pty', authorization, timeoutMs);
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
