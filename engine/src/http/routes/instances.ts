import type { SnapshotCachePolicy } from '../../store/images/image-cache.js';
import type { NetworkConfigInput } from '../../core/network-config.js';
import type { InstanceState, Metadata } from '../../core/types.js';
import type { Services } from '../../engine.js';
import type { StartInput } from '../../services/instances.js';
import type { Router } from '../app.js';
import { body, bool, listOwner, listQuery, ownerOf, params, query, serverTiming } from './common.js';
import { instanceView, publicBranch, publicSnapshot } from './views.js';

export function registerInstanceRoutes(r: Router, s: Services): void {
  const i = s.instances;
  r.op('startInstance', async (req, reply) => {
    const t0 = performance.now();
    const timings = {};
    const input = body<StartInput>(req);
    // No ttl given: the engine's default lifetime (FAAS_INSTANCE_TTL), so a forgotten instance does
    // not run for ever; `ttl: null` asks for none.
    const ttl = input.ttl === undefined ? i.defaultTtl : input.ttl;
    const inst = await i.start({ ...input, ttl, owner: ownerOf(req) }, bool(query(req).wait, true), timings);
    reply.header('server-timing', serverTiming({ ...timings, total: Math.round((performance.now() - t0) * 10) / 10 }));
    return reply.code(201).send(instanceView(s, req)(inst));
  });
  r.op('listInstances', async (req) => {
    const q = query(req);
    const page = i.list({ ...listQuery(q), state: q.state, snapshotId: q.snapshotId, parentId: q.parentId, owner: listOwner(req) });
    return { ...page, data: page.data.map(instanceView(s, req)) };
  });
  r.op('getInstance', async (req) => instanceView(s, req)(i.get(params(req).id)));
  r.op('stopInstance', async (req) => instanceView(s, req)(await i.stop(params(req).id)));
  r.op('pauseInstance', async (req) => instanceView(s, req)(await i.pause(params(req).id)));
  r.op('resumeInstance', async (req) => instanceView(s, req)(await i.resume(params(req).id)));
  r.op('deleteInstance', async (req, reply) => {
    await i.delete(params(req).id);
    return reply.code(204).send();
  });
  r.op('waitInstance', async (req) => {
    const q = query(req);
    return instanceView(s, req)(await i.waitFor(params(req).id, (q.state ?? 'ready') as InstanceState, Number(q.timeout ?? 30_000)));
  });
  r.op('getInstanceMetrics', async (req) => i.metrics(params(req).id));
  r.op('setInstanceNetwork', async (req) => instanceView(s, req)(await i.setNetwork(params(req).id, body<{ networkConfig?: NetworkConfigInput; networkBandwidth?: number | null }>(req))));
  r.op('setInstanceMetadata', async (req) => instanceView(s, req)(i.setMetadata(params(req).id, body<Metadata>(req))));
  r.op('snapshotInstance', async (req, reply) => {
    const { ttl, cacheConfig, optimizationHints, ...b } = body<{ name?: string; metadata?: Metadata; ttl?: number } & SnapshotCachePolicy>(req);
    const snap = await i.snapshot(params(req).id, { ...b, owner: ownerOf(req), cachePolicy: { cacheConfig, optimizationHints } });
    if (ttl) snap.expiresAt = s.lifetimes.expireSnapshot(snap.id, ttl);
    return reply.code(201).send(publicSnapshot(snap));
  });
  r.op('branchInstance', async (req, reply) => {
    const t0 = performance.now();
    const b = body<{ count?: number; wait?: boolean; metadata?: Metadata; names?: string[]; networkConfig?: NetworkConfigInput; networkBandwidth?: number | null } & SnapshotCachePolicy>(req);
    const timings = {};
    const opts = {
      wait: b.wait, metadata: b.metadata, owner: ownerOf(req), networkConfig: b.networkConfig, networkBandwidth: b.networkBandwidth,
      cachePolicy: { cacheConfig: b.cacheConfig, optimizationHints: b.optimizationHints },
    };
    // With names, each child also gets a Branch record (services/branches.ts).
    const { snapshot, instances, branches } = b.names
      ? await s.branches.branchInstance(params(req).id, b.count ?? 1, { ...opts, names: b.names }, timings)
      : { ...(await i.branch(params(req).id, b.count ?? 1, opts, timings)), branches: undefined };
    reply.header('server-timing', serverTiming({ ...timings, total: Math.round((performance.now() - t0) * 10) / 10 }));
    return reply.code(201).send({
      snapshot: publicSnapshot(snapshot), instances: instances.map(instanceView(s, req)), ...(branches ? { branches: branches.map(publicBranch) } : {}),
    });
  });
}
