// Remote tunnels (`ssh -R`): code in an instance connects to a port inside it and reaches a
// service on the caller's side. The sandbox cannot connect out to the host, so everything is
// opened from outside in (spec/agent-protocol.md "Tunnels", spec/openapi.yaml openTunnel):
//   open:   caller WS …/tunnels/{port}  →  engine opens the agent's /v1/tunnels/listen?port= upgrade
//           (the agent binds the port; taken → 409 before the caller's 101)
//   accept: agent control line {"type":"connection","id"} → engine remembers the id for this
//           tunnel and passes the message on to the caller's WS
//   claim:  caller WS …/tunnels/{port}/connections/{id} → engine opens the agent's
//           /v1/tunnels/connections/{id} upgrade and pipes the two (services/port-forwards.ts)
//   close:  the caller's WS closes → the agent's control socket is closed → the listener and the
//           unclaimed connections go. The instance going away closes the caller's WS (1011).
// Only the key that opened a tunnel can claim its connections, and only ids it was told about.
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { FaasError } from '../core/errors.js';
import { openAgentUpgrade } from '../runtime/agent-upgrade.js';

/** How long an announced connection stays claimable here (the agent closes it after 30 s). */
const CLAIM_MS = 35_000;

interface OpenTunnel {
  keyId: string;
  control: Socket;
  /** Announced, not yet claimed connection ids → their expiry timers. */
  pending: Map<string, NodeJS.Timeout>;
}

export class Tunnels {
  private readonly open = new Map<string, OpenTunnel>();

  get count(): number {
    return this.open.size;
  }

  /** Opens the agent's listener; resolves once it listens. Call `attach` when the caller's WS is up. */
  async listen(instanceId: string, ip: string, port: number, keyId: string, authorization: string | undefined): Promise<Socket> {
    const key = `${instanceId}/${port}`;
    if (this.open.has(key)) throw new FaasError('conflict', `a tunnel already listens on port ${port} of instance ${instanceId}; close it first`, { port });
    const { socket, rest } = await openAgentUpgrade(ip, `/v1/tunnels/listen?port=${port}`, 'faas-tunnel', authorization, 'a tunnel');
    if (rest.length) socket.unshift(rest);
    // Registered before the caller's 101, so a second open of the port is refused at once.
    this.open.set(key, { keyId, control: socket, pending: new Map() });
    return socket;
  }

  /** Announces the agent's connections on `ws` until either closes. */
  attach(instanceId: string, port: number, ws: WebSocket, onClose: () => void): void {
    const key = `${instanceId}/${port}`;
    const t = this.open.get(key)!;
    let done = false;
    const finish = (code: number, reason: string) => {
      if (done) return;
      done = true;
      for (const timer of t.pending.values()) clearTimeout(timer);
      this.open.delete(key);
      t.control.destroy();
      if (ws.readyState === ws.OPEN) ws.close(code, reason);
      onClose();
    };
    let buf = '';
    t.control.setEncoding('utf8');
    t.control.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > 64 * 1024) return finish(1011, 'the instance sent a malformed tunnel message');
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let msg: { type?: unknown; id?: unknown };
        try {
          msg = JSON.parse(line);
        } catch {
          continue;
        }
        if (msg.type !== 'connection' || typeof msg.id !== 'string' || !/^[0-9a-f]{32}$/.test(msg.id)) continue;
        const id = msg.id;
        t.pending.set(id, setTimeout(() => t.pending.delete(id), CLAIM_MS));
        ws.send(JSON.stringify({ type: 'connection', id }));
      }
    });
    t.control.on('close', () => finish(1011, 'the instance closed the tunnel (stopped or restarted)'));
    t.control.on('error', () => finish(1011, 'the instance closed the tunnel (stopped or restarted)'));
    ws.on('close', () => finish(1000, ''));
    ws.on('error', () => finish(1011, ''));
    t.control.resume();
  }

  /** Drops a tunnel whose caller never got its 101 (the upgrade failed after listen). */
  abandon(instanceId: string, port: number): void {
    const key = `${instanceId}/${port}`;
    this.open.get(key)?.control.destroy();
    this.open.delete(key);
  }

  /**
   * Takes an announced connection for `keyId` and opens its agent side. Anything else — no tunnel
   * on the port, another key's tunnel, an id never announced or already claimed — is one 404.
   */
  async claim(instanceId: string, ip: string, port: number, id: string, keyId: string, authorization: string | undefined): Promise<{ socket: Socket; rest: Buffer }> {
    const t = this.open.get(`${instanceId}/${port}`);
    const timer = t && t.keyId === keyId ? t.pending.get(id) : undefined;
    if (!t || !timer) {
      throw new FaasError('not_found', `no connection ${id} is waiting on a tunnel of yours on port ${port}; claim the ids your tunnel announces, within 30 s`, { port });
    }
    clearTimeout(timer);
    t.pending.delete(id);
    return openAgentUpgrade(ip, `/v1/tunnels/connections/${id}`, 'faas-tunnel', authorization, 'a tunnel connection');
  }
}
