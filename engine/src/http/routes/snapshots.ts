import type { SnapshotCachePolicy } from '../../store/images/image-cache.js';
import type { Metadata } from '../../core/types.js';
import type { Services } from '../../engine.js';
import type { CreateSnapshotInput } from '../../services/snapshots.js';
import type { Router } from '../app.js';
import { body, bool, listOwner, listQuery, ownerOf, params, query } from './common.js';
import { publicSnapshot } from './views.js';

export function registerSnapshotRoutes(r: Router, s: Services): void {
  r.op('createSnapshot', async (req, reply) => {
    const { cacheConfig, optimizationHints, ...b } = body<CreateSnapshotInput & { ttl?: number; fresh?: boolean } & SnapshotCachePolicy>(req);
    // reuseSnapshots: false is fresh: true; a cached root keeps the policy it was made with.
    const fresh = b.fresh ?? optimizationHints?.reuseSnapshots === false;
    const { snapshot: snap, cached } = await s.steps.createRoot({ ...b, fresh, cachePolicy: { cacheConfig, optimizationHints } }, ownerOf(req));
    if (b.ttl) snap.expiresAt = s.lifetimes.expireSnapshot(snap.id, b.ttl);
    return reply.code(cached ? 200 : 201).send({ ...publicSnapshot(snap), cached });
  });
  r.op('listSnapshots', async (req) => {
    const q = query(req);
    const page = s.snapshots.list({ ...listQuery(q), digest: q.digest, imageId: q.imageId, parentId: q.parentId, owner: listOwner(req) });
    return { ...page, data: page.data.map((snap) => ({ ...publicSnapshot(snap), storage: s.snapshots.storageOf(snap.id) })) };
  });
  r.op('getSnapshot', async (req) => {
    const snap = s.snapshots.get(params(req).id);
    return { ...publicSnapshot(snap), storage: s.snapshots.storageOf(snap.id) };
  });
  r.op('deleteSnapshot', async (req, reply) => {
    await s.snapshots.delete(params(req).id, bool(query(req).force, false));
    return reply.code(204).send();
  });
  r.op('setSnapshotMetadata', async (req) => publicSnapshot(s.snapshots.setMetadata(params(req).id, body<Metadata>(req))));
  r.op('getSnapshotPool', async (req) => s.clones.get(params(req).id));
  r.op('setSnapshotPool', async (req) => {
    const b = body<{ minInstances: number; maxInstances?: number | null }>(req);
    return s.clones.set(params(req).id, b.minInstances, b.maxInstances ?? null);
  });
  r.op('cloneSnapshot', async (req, reply) => {
    const { ttl, ...b } = body<{ name?: string; metadata?: Metadata; ttl?: number }>(req);
    const snap = await s.snapshots.clone(params(req).id, { ...b, owner: ownerOf(req) });
    if (ttl) snap.expiresAt = s.lifetimes.expireSnapshot(snap.id, ttl);
    return reply.code(201).send(publicSnapshot(snap));
  });
}
