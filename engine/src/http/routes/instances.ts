import type { InstanceState, Metadata } from '../../core/types.js';
import type { Services } from '../../engine.js';
import type { StartInput } from '../../services/instances.js';
import type { Router } from '../app.js';
import { body, bool, listOwner, listQuery, ownerOf, params, query } from './common.js';
import { instanceView, publicSnapshot } from './views.js';

export function registerInstanceRoutes(r: Router, s: Services): void {
  const i = s.instances;
  r.op('startInstance', async (req, reply) => {
    const t0 = performance.now();
    const timings = {};
    const inst = await i.start({ ...body<StartInput>(req), owner: ownerOf(req) }, bool(query(req).wait, true), timings);
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
  r.op('restartInstance', async (req) => instanceView(s, req)(await i.restart(params(req).id)));
  r.op('deleteInstance', async (req, reply) => {
    await i.delete(params(req).id);
    return reply.code(204).send();
  });
  r.op('waitInstance', async (req) => {
    const q = query(req);
    return instanceView(s, req)(await i.waitFor(params(req).id, (q.state ?? 'ready') as InstanceState, Number(q.timeout ?? 30_000)));
  });
  r.op('getInstanceMetrics', async (req) => i.metrics(params(req).id));
  r.op('setInstanceMetadata', async (req) => instanceView(s, req)(i.setMetadata(params(req).id, body<Metadata>(req))));
  r.op('snapshotInstance', async (req, reply) => {
    const { ttl, ...b } = body<{ name?: string; metadata?: Metadata; ttl?: number }>(req);
    const snap = await i.snapshot(params(req).id, { ...b, owner: ownerOf(req) });
    if (ttl) snap.expiresAt = s.lifetimes.expireSnapshot(snap.id, ttl);
    return reply.code(201).send(publicSnapshot(snap));
  });
  r.op('branchInstance', async (req, reply) => {
    const t0 = performance.now();
    const b = body<{ count?: number; wait?: boolean; metadata?: Metadata }>(req);
    const timings = {};
    const out = await i.branch(params(req).id, b.count ?? 1, { wait: b.wait, metadata: b.metadata, owner: ownerOf(req) }, timings);
    reply.header('server-timing', serverTiming({ ...timings, total: Math.round((performance.now() - t0) * 10) / 10 }));
    return reply.code(201).send({ snapshot: publicSnapshot(out.snapshot), instances: out.instances.map(instanceView(s, req)) });
  });
}

const serverTiming = (t: Record<string, number>) => Object.entries(t).map(([k, v]) => `${k};dur=${v}`).join(', ');
