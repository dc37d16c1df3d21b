// The ownership guard: every route that names an image, snapshot, instance or branch (in its path, or as
// a reference in its JSON body) answers 404 for a record the caller's key does not own, the same
// answer as for an id that does not exist, so ids of other keys cannot be probed. One hook covers
// every sub-route (exec, files, processes, pool, branch, …), including routes added later.
// Admin keys pass everything. The shared default image (owner NULL) is readable by all keys and
// writable by admin keys only. Lists filter by owner in the routes (ownerFilter).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { forbidden, notFound } from '../core/errors.js';
import { owns, type Principal } from '../core/principal.js';
import type { Services } from '../engine.js';
import { principalOf } from './auth.js';

type Kind = 'image' | 'snapshot' | 'instance' | 'branch';

const PATH_KINDS: [string, Kind][] = [
  ['/v1/images/:id', 'image'],
  ['/v1/snapshots/:id', 'snapshot'],
  ['/v1/instances/:id', 'instance'],
  ['/v1/branches/:id', 'branch'],
];
/** Body fields that reference a record the caller must be able to see to use it. */
const BODY_REFS: [string, Kind][] = [
  ['snapshotId', 'snapshot'],
  ['imageId', 'image'],
  ['toInstanceId', 'instance'],
];

export function registerOwnership(app: FastifyInstance, s: Services): void {
  const check = (who: Principal, kind: Kind, id: string, write: boolean) => {
    if (who.admin) return;
    if (kind === 'image') {
      const img = s.images.find(id);
      if (!img) return; // the route answers image_not_found itself
      if (img.owner === null) {
        if (write) throw forbidden('the shared default image can be changed by admin keys only', { id });
        return;
      }
      if (!owns(who, img.owner)) throw notFound('image', id);
      return;
    }
    const rec = kind === 'snapshot' ? s.snapshots.find(id) : kind === 'branch' ? s.branches.find(id) : s.instances.find(id);
    if (rec && !owns(who, rec.owner)) throw notFound(kind, id);
  };

  app.addHook('preHandler', async (req: FastifyRequest) => {
    if (!req.principal) return; // public route
    const who = principalOf(req);
    const route = req.routeOptions.url ?? '';
    const id = (req.params as { id?: string } | undefined)?.id;
    if (id) {
      for (const [prefix, kind] of PATH_KINDS) {
        if (route === prefix || route.startsWith(`${prefix}/`)) check(who, kind, id, req.method !== 'GET');
      }
    }
    // A second record in the path (diffSnapshots, diffBranch), a rebase's target, lists of them
    // (mergeSnapshots, mergeBranches): a branch or a snapshot, told by its id's prefix.
    const refOf = (ref: unknown) => {
      if (typeof ref === 'string') check(who, ref.startsWith('br_') ? 'branch' : 'snapshot', ref, false);
    };
    refOf((req.params as { targetId?: string } | undefined)?.targetId);
    const body = req.body;
    if (body && typeof body === 'object' && !Array.isArray(body) && typeof (body as { pipe?: unknown }).pipe !== 'function') {
      for (const [field, kind] of BODY_REFS) {
        const ref = (body as Record<string, unknown>)[field];
        if (typeof ref === 'string') check(who, kind, ref, false);
      }
      const refs = body as { snapshotIds?: unknown; branchIds?: unknown; targetId?: unknown };
      for (const list of [refs.snapshotIds, refs.branchIds]) if (Array.isArray(list)) list.forEach(refOf);
      refOf(refs.targetId);
    }
  });
}
