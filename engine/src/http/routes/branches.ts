// Branches (services/branches.ts): named pointers into the snapshot tree with a checked-out instance.
import type { Metadata } from '../../core/types.js';
import type { Services } from '../../engine.js';
import type { Router } from '../app.js';
import { body, bool, listOwner, listQuery, ownerOf, params, query } from './common.js';
import { instanceView, publicBranch, publicSnapshot } from './views.js';

export function registerBranchRoutes(r: Router, s: Services): void {
  const b = s.branches;
  r.op('createBranch', async (req, reply) => {
    const input = body<{ snapshotId: string; name?: string; metadata?: Metadata }>(req);
    return reply.code(201).send(publicBranch(b.create({ ...input, owner: ownerOf(req) })));
  });
  r.op('listBranches', async (req) => {
    const q = query(req);
    const page = b.list({ ...listQuery(q), parentId: q.parentId, name: q.name, owner: listOwner(req) });
    return { ...page, data: page.data.map(publicBranch) };
  });
  r.op('getBranch', async (req) => publicBranch(b.get(params(req).id)));
  r.op('deleteBranch', async (req, reply) => {
    await b.delete(params(req).id, bool(query(req).force, false));
    return reply.code(204).send();
  });
  r.op('checkoutBranch', async (req, reply) => {
    const { instance, started } = await b.checkout(params(req).id);
    return reply.code(started ? 201 : 200).send(instanceView(s, req)(instance));
  });
  r.op('commitBranch', async (req, reply) => {
    const snap = await b.commit(params(req).id, body<{ message?: string; metadata?: Metadata }>(req));
    return reply.code(201).send(publicSnapshot(snap));
  });
}
