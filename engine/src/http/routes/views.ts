// What the API shows of a record: internal fields (host paths, specs, netns names) stay inside.
import { AGENT_PORT } from '../../runtime/agent-client.js';
import type { Branch, Image, Instance, Snapshot } from '../../core/types.js';
import type { FastifyRequest } from 'fastify';
import type { Services } from '../../engine.js';
import { principalOf } from '../auth.js';

export function publicSnapshot(s: Snapshot) {
  const { spec: _spec, imageDir: _dir, state: _state, owner: _owner, checksum, ...rest } = s;
  // '' in the store: not computed yet (a checkpoint is checksummed in the engine's next quiet moment).
  return { ...rest, checksum: checksum || null };
}

export function publicInstance(i: Instance) {
  const { netns: _netns, owner: _owner, ip: held, ...rest } = i;
  // A stopped (or failed) instance keeps its record of the address for a restart, but the address
  // is back in the pool and may be another instance's now: showing it would point at that one.
  const ip = i.state === 'stopped' || i.state === 'error' ? null : held;
  return { ...rest, network: { ip }, endpoints: { agent: ip ? `http://${ip}:${AGENT_PORT}` : null } };
}

/** publicInstance plus what other services keep about it: wakeOn and its HTTP services (with
 *  token links minted for the caller's key). */
export function instanceView(s: Pick<Services, 'wake' | 'httpServices'>, req: FastifyRequest) {
  const who = principalOf(req);
  return (i: Instance) => ({
    ...publicInstance(i),
    wakeOn: s.wake.get(i.id),
    services: s.httpServices.list(i.id).map((x) => s.httpServices.view(x, who)),
  });
}

export function publicImage(i: Image) {
  const { rootfs: _rootfs, owner: _owner, ...rest } = i;
  return rest;
}

export function publicBranch(b: Branch) {
  const { owner: _owner, ...rest } = b;
  return rest;
}
