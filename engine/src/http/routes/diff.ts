import type { Metadata } from '../../core/types.js';
import type { Services } from '../../engine.js';
import type { Strategy } from '../../services/merge.js';
import type { Router } from '../app.js';
import { body, bool, ownerOf, params, query } from './common.js';
import { publicBranch, publicSnapshot } from './views.js';

export function registerDiffRoutes(r: Router, s: Services): void {
  r.op('diffSnapshots', async (req) => {
    const p = params(req) as { id: string; targetId: string };
    return s.diffs.diff(p.id, p.targetId, { textDiffs: bool(query(req).textDiffs, true) });
  });
  r.op('mergeSnapshots', async (req, reply) => {
    const b = body<{ snapshotIds: string[]; strategy?: Strategy; name?: string; metadata?: Metadata }>(req);
    const snap = await s.merges.merge(b.snapshotIds, { strategy: b.strategy, name: b.name, metadata: b.metadata, owner: ownerOf(req) });
    return reply.code(201).send(publicSnapshot(snap));
  });
}

export function registerBranchDiffRoutes(r: Router, s: Services): void {
  r.op('diffBranch', async (req) => {
    const p = params(req) as { id: string; targetId: string };
    return s.branchMerges.diff(p.id, p.targetId, { textDiffs: bool(query(req).textDiffs, true) });
  });
  r.op('mergeBranches', async (req, reply) => {
    const b = body<{ branchIds: string[]; strategy?: Strategy; message?: string; metadata?: Metadata }>(req);
    const snap = await s.branchMerges.merge(b.branchIds, { ...b, owner: ownerOf(req) });
    return reply.code(201).send(publicSnapshot(snap));
  });
  r.op('rebaseBranch', async (req) => {
    const b = body<{ targetId: string; strategy?: Strategy }>(req);
    return publicBranch(await s.branchMerges.rebase(params(req).id, b.targetId, { strategy: b.strategy }));
  });
}
