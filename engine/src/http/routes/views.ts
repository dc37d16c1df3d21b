// What the API shows of a record: internal fields (host paths, specs, netns names) stay inside.
import { AGENT_PORT } from '../../runtime/agent-client.js';
import type { Image, Instance, Snapshot } from '../../core/types.js';

export function publicSnapshot(s: Snapshot) {
  const { spec: _spec, imageDir: _dir, state: _state, ...rest } = s;
  return rest;
}

export function publicInstance(i: Instance) {
  const { netns: _netns, ip, ...rest } = i;
  return { ...rest, network: { ip }, endpoints: { agent: ip ? `http://${ip}:${AGENT_PORT}` : null } };
}

export function publicImage(i: Image) {
  const { rootfs: _rootfs, ...rest } = i;
  return rest;
}
