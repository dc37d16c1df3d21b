// Port forwards and remote tunnels (spec/openapi.yaml tag `network`): WebSocket routes served
// through http/upgrades.ts (auth, envelope before the 101), the pipes in services/port-forwards.ts
// and services/tunnels.ts. Each open connection (and each open tunnel) holds one slot of its own
// limits, per instance and per API key, apart from exec's: a long-lived forward never takes a slot
// exec needs, and a flood of forwards cannot pile up sockets without bound.
import type { FastifyInstance } from 'fastify';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { FaasError, invalid, notFound } from '../../core/errors.js';
import { assertCan } from '../../core/instance-states.js';
import { owns, type Principal } from '../../core/principal.js';
import type { Instance } from '../../core/types.js';
import type { FaasEvent } from '../../core/events.js';
import type { Services } from '../../engine.js';
import { pipe, reachPort } from '../../services/port-forwards.js';
import type { Router } from '../app.js';
import { InFlight } from '../concurrency.js';
import { params } from './common.js';
import { addWebSocketRoute } from '../upgrades.js';

export interface ForwardLimits {
  /** Open forwarded connections, tunnels and tunnel connections per instance. */
  perInstance: number;
  /** The same per API key (its tokens share it). */
  perCredential: number;
}

export const forwards = { open: 0 };

const TCP = /^\/v1\/instances\/(inst_[a-z0-9]+)\/tcp\/([^/]+)$/;
const TUNNEL = /^\/v1\/instances\/(inst_[a-z0-9]+)\/tunnels\/([^/]+)$/;
const TUNNEL_CONNECTION = /^\/v1\/instances\/(inst_[a-z0-9]+)\/tunnels\/([^/]+)\/connections\/([^/]+)$/;

function portOf(v: string): number {
  const n = /^[0-9]{1,5}$/.test(v) ? Number(v) : NaN;
  if (!(n >= 1 && n <= 65535)) throw invalid(`port must be an integer from 1 to 65535, not ${JSON.stringify(v.slice(0, 20))}`, { field: '/port' });
  return n;
}

export function registerNetworkRoutes(app: FastifyInstance, r: Router, s: Services, limits: ForwardLimits): void {
  const tunnels = s.tunnels;
  const slots = new InFlight();
  // What is open per instance, so that it ends when the instance does (stop, restart, error,
  // delete): its sandbox and network namespace go, and nothing would tell the sockets.
  const open = new Map<string, Set<() => void>>();
  const track = (instanceId: string, closer: () => void): (() => void) => {
    let set = open.get(instanceId);
    if (!set) open.set(instanceId, (set = new Set()));
    set.add(closer);
    return () => {
      set.delete(closer);
      if (!set.size && open.get(instanceId) === set) open.delete(instanceId);
    };
  };
  const ENDS = new Set(['instance.stopped', 'instance.error', 'instance.deleted', 'instance.pending']);
  const onEvent = (e: FaasEvent) => {
    if (!ENDS.has(e.type)) return;
    for (const close of [...(open.get(e.resourceId) ?? [])]) close();
  };
  s.events.on('event', onEvent);
  app.addHook('onClose', async () => void s.events.off('event', onEvent));
  /** Takes a slot for the instance and the key, or throws 429; returns its release. */
  const take = (who: Principal, instanceId: string): (() => void) => {
    const keys: [string, number][] = [[`instance:${instanceId}`, limits.perInstance], [`credential:${who.keyId}`, limits.perCredential]];
    const full = slots.tryAcquire(keys);
    if (full) {
      const scope = full.startsWith('instance:') ? 'forward-instance' : 'forward-credential';
      const limit = scope === 'forward-instance' ? limits.perInstance : limits.perCredential;
      throw new FaasError(
        'resource_limit',
        `${scope === 'forward-instance' ? `instance ${instanceId}` : 'this API key'} already has ${limit} forwarded connections and tunnels open; close some and retry`,
        { reason: 'too_many_requests', scope, limit },
        { status: 429, retryAfterSeconds: 1 },
      );
    }
    const hold = s.lifetimes.hold(instanceId); // an open connection is activity (autoStop)
    let released = false;
    return () => {
      if (released) return;
      released = true;
      slots.release(keys.map(([k]) => k));
      hold();
    };
  };
  /** The instance if the caller owns it and it is ready (the same answers as every instance route). */
  const readyInstance = (who: Principal, id: string): Instance => {
    const inst = s.instances.get(id);
    if (!owns(who, inst.owner)) throw notFound('instance', id);
    assertCan(inst, 'exec');
    return inst;
  };

  const reach = (inst: Instance, port: number) => reachPort(inst.ip!, port, s.instances.agents.authorization(inst.ip!));

  /** A WebSocket carrying one TCP connection that `connectTo` opens, holding a slot while it lasts. */
  const piped = async (who: Principal, m: RegExpExecArray, connectTo: (inst: Instance, port: number) => Promise<{ socket: Socket; rest: Buffer }>) => {
    const port = portOf(m[2]);
    const inst = readyInstance(who, m[1]);
    const release = take(who, inst.id);
    try {
      const { socket, rest } = await connectTo(inst, port);
      forwards.open++;
      // A reset, not an end: the client must not take it for the server finishing.
      const untrack = track(inst.id, () => socket.destroy(new Error('the instance stopped')));
      const done = () => {
        forwards.open--;
        untrack();
        release();
      };
      return {
        start: (ws: WebSocket) => pipe(ws, socket, rest, done),
        abandon: () => (socket.destroy(), done()),
      };
    } catch (err) {
      release();
      throw err;
    }
  };

  // A plain GET: the same checks and one connection attempt (what the SDKs ask before listening).
  r.op('openPortForward', async (req) => {
    const { id } = params(req);
    const port = (req.params as { port: number }).port;
    const inst = s.instances.get(id);
    assertCan(inst, 'exec');
    (await reach(inst, port)).socket.destroy();
    return { port, listening: true };
  });
  const upgradeOnly = async () => {
    throw invalid('this route is a WebSocket: send Connection: Upgrade and Upgrade: websocket');
  };
  r.op('openTunnel', upgradeOnly);
  r.op('acceptTunnelConnection', upgradeOnly);

  addWebSocketRoute(app, r, s, {
    pattern: TCP,
    protocol: 'faas-tcp',
    open: (who, m) => piped(who, m, reach),
  });

  addWebSocketRoute(app, r, s, {
    pattern: TUNNEL,
    protocol: 'faas-tunnel',
    async open(who, m) {
      const port = portOf(m[2]);
      const inst = readyInstance(who, m[1]);
      const release = take(who, inst.id);
      try {
        await tunnels.listen(inst.id, inst.ip!, port, who.keyId, s.instances.agents.authorization(inst.ip!));
      } catch (err) {
        release();
        throw err;
      }
      const untrack = track(inst.id, () => tunnels.abandon(inst.id, port));
      const done = () => (untrack(), release());
      return {
        start: (ws) => tunnels.attach(inst.id, port, ws, done),
        abandon: () => (tunnels.abandon(inst.id, port), done()),
      };
    },
  });

  addWebSocketRoute(app, r, s, {
    pattern: TUNNEL_CONNECTION,
    protocol: 'faas-tunnel',
    open: (who, m) =>
      piped(who, m, (inst, port) => tunnels.claim(inst.id, inst.ip!, port, m[3], who.keyId, s.instances.agents.authorization(inst.ip!))),
  });
}
