// Raw upgraded connections to faas-agent (spec/agent-protocol.md "Terminal", "Attached exec",
// "SFTP", tunnels): one TCP connection each, since these carry their own framing for as long as
// they last and cannot share the keep-alive pool. The agent answers 101 and the socket then
// carries that route's protocol, or answers its JSON error envelope and closes.
import { connect, type Socket } from 'node:net';
import { FaasError } from '../core/errors.js';
import { AGENT_PORT } from './agent-client.js';

export const FRAME = { input: 1, output: 2, resize: 3, exit: 4, signal: 5, stderr: 6, eof: 7 } as const;

/** One `[type:1][length:4 BE][payload]` frame. */
export function frame(type: number, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type;
  out.writeUInt32BE(body.length, 1);
  body.copy(out, 5);
  return out;
}

/** Splits a byte stream into frames; `push` returns the frames now complete. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): { type: number; payload: Buffer }[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: { type: number; payload: Buffer }[] = [];
    while (this.buf.length >= 5) {
      const len = this.buf.readUInt32BE(1);
      if (this.buf.length < 5 + len) break;
      out.push({ type: this.buf[0], payload: this.buf.subarray(5, 5 + len) });
      this.buf = this.buf.subarray(5 + len);
    }
    return out;
  }
}

/** The agent's codes that the engine passes on as they are; anything else is a runtime error. */
const PASSED_ON = new Set(['invalid_request', 'conflict', 'not_found']);

export function openAgentUpgrade(
  ip: string,
  path: string,
  protocol: string,
  authorization: string | undefined,
  what: string,
  { timeoutMs = 5_000, halfOpen = true, pause = true }: { timeoutMs?: number; halfOpen?: boolean; pause?: boolean } = {},
): Promise<{ socket: Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    // halfOpen: a tunnel passes each side's end of stream on as a half-close (the terminal does not).
    const socket = connect({ host: ip, port: AGENT_PORT, allowHalfOpen: halfOpen });
    socket.setNoDelay(true);
    let head = Buffer.alloc(0);
    const fail = (err: FaasError) => {
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new FaasError('timeout', `the instance did not open ${what} in time`, null)), timeoutMs);
    socket.once('error', (e) => {
      clearTimeout(timer);
      fail(new FaasError('runtime_error', `the instance's agent is unreachable: ${e.message}`, null));
    });
    socket.once('connect', () => {
      const auth = authorization && !/[\r\n]/.test(authorization) ? `Authorization: ${authorization}\r\n` : '';
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${ip}:${AGENT_PORT}\r\n${auth}Connection: Upgrade\r\nUpgrade: ${protocol}\r\n\r\n`);
    });
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 64 * 1024) fail(new FaasError('runtime_error', `faas-agent sent an oversized answer to the ${what} upgrade`, null));
        return;
      }
      socket.off('data', onData);
      if (pause) socket.pause(); // until the caller attaches its reader: no byte after the 101 is lost
      clearTimeout(timer);
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head.subarray(0, end).toString())?.[1]);
      if (status === 101) return resolve({ socket, rest: head.subarray(end + 4) });
      // An error answer: the JSON body follows the headers (the agent closes after it).
      const body = head.subarray(end + 4).toString();
      let code = 'runtime_error';
      let message = `faas-agent refused ${what} (${status})`;
      try {
        const e = JSON.parse(body).error;
        message = e.message;
        if (PASSED_ON.has(e.code)) code = e.code;
      } catch {
        /* keep the generic message */
      }
      fail(new FaasError(code as 'runtime_error', message, null));
    };
    socket.on('data', onData);
  });
}

/**
 * Opens `GET path` with `Upgrade: proto` on the agent at `ip` for a framed session (terminal, SSH
 * exec, SFTP); resolves with the socket, flowing, and any bytes read past the 101.
 */
export function upgradeAgent(ip: string, path: string, proto: string, authorization: string | undefined, timeoutMs = 5_000): Promise<{ socket: Socket; rest: Buffer }> {
  return openAgentUpgrade(ip, path, proto, authorization, `a ${proto} session`, { timeoutMs, halfOpen: false, pause: false });
}
