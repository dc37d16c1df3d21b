// Conformance vocabulary for port forwards and tunnels (tests/conformance/README.md): each call
// opens the forward or tunnel, makes one real TCP exchange through it, and closes it again.
import { connect, createServer } from 'node:net';
import type { FaaSClient } from '../../src/index.js';

type Args = Record<string, any>;

/** Connects to a local port, sends `send`, half-closes, resolves with the whole reply. */
function roundTrip(port: number, send: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let reply = '';
    const sock = connect({ port, host: '127.0.0.1' }, () => sock.end(send));
    sock.on('data', (d) => (reply += d.toString('utf8')));
    sock.on('end', () => resolve(reply));
    sock.on('error', reject);
  });
}

export const networkCalls: Record<string, (a: Args, c: FaaSClient) => Promise<unknown>> = {
  'network.portForward': async (a, c) => {
    const forward = await c.network.portForward(a.target, a.localPort ?? 0, a.remotePort);
    try {
      return { localPort: forward.localPort, reply: await roundTrip(forward.localPort, a.send ?? '') };
    } finally {
      await forward.close();
    }
  },
  'network.createTunnel': async (a, c) => {
    // A local HTTP-ish server: answers `reply` to every request (after its head).
    const server = createServer((s) => {
      let head = '';
      s.on('data', (d) => {
        head += d.toString('latin1');
        if (head.includes('\r\n\r\n')) s.end(`HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(a.reply)}\r\nConnection: close\r\n\r\n${a.reply}`);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const tunnel = await c.network.createTunnel(a.target, { direction: 'remote', remotePort: a.remotePort, localPort: (server.address() as { port: number }).port });
      try {
        return await c.execution.exec(a.target, a.command);
      } finally {
        await tunnel.close();
      }
    } finally {
      server.close();
    }
  },
};
