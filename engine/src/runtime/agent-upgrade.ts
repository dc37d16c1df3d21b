// An HTTP/1.1 Upgrade request to faas-agent on its own TCP connection (terminal, tunnels): the
// agent answers 101 and the socket then carries that route's protocol, or answers its JSON error
// envelope and closes. Resolves with the socket and any bytes read past the 101.
import { connect, type Socket } from 'node:net';
import { FaasError } from '../core/errors.js';
import { AGENT_PORT } from './agent-client.js';

/** The agent's codes that the engine passes on as they are; anything else is a runtime error. */
const PASSED_ON = new Set(['invalid_request', 'conflict', 'not_found']);

export function openAgentUpgrade(
  ip: string,
  path: string,
  protocol: string,
  authorization: string | undefined,
  what: string,
  { timeoutMs = 5_000, halfOpen = true }: { timeoutMs?: number; halfOpen?: boolean } = {},
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
      socket.pause(); // until the caller attaches its reader: no byte after the 101 is lost
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
