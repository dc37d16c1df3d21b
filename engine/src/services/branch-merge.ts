// diff, merge and rebase of branches (issue 14 items 2 and 3): the snapshot-level operations
// (services/diff.ts, services/merge.ts) on branch heads, then the heads moved. Memory and
// processes come from the first head (merge) or the target's head (rebase), never merged.
// A checked-out instance is left running as it was but detached from the branch, so the next
// checkout starts from the new head and uncommitted work is never overwritten.
import type { Branch, Metadata, Snapshot } from '../core/types.js';
import type { BranchRepo } from '../store/sqlite/branches.js';
import type { BranchService } from './branches.js';
import type { BranchDiff, DiffService } from './diff.js';
import type { MergeService, Strategy } from './merge.js';

export class BranchMergeService {
  constructor(
    private readonly branches: BranchService,
    private readonly repo: BranchRepo,
    private readonly diffs: DiffService,
    private readonly merges: MergeService,
  ) {}

  /** A branch id names its head; a snapshot id itself. */
  private headOf(id: string): string {
    return id.startsWith('br_') ? this.branches.get(id).head : id;
  }

  diff(branchId: string, targetId: string, opts: { textDiffs?: boolean } = {}): Promise<BranchDiff> {
    return this.diffs.diff(this.branches.get(branchId).head, this.headOf(targetId), opts);
  }

  async merge(branchIds: string[], opts: { strategy?: Strategy; message?: string; metadata?: Metadata; owner: string | null }): Promise<Snapshot> {
    const heads = branchIds.map((id) => this.branches.get(id).head);
    const first = this.branches.get(branchIds[0]);
    const metadata = { ...opts.metadata, ...(opts.message ? { message: opts.message } : {}), 'faas.mergedFrom': branchIds.join(',') };
    const snap = await this.merges.merge(heads, { strategy: opts.strategy, metadata, owner: first.owner });
    this.repo.update(first.id, { head: snap.id, instanceId: null });
    return snap;
  }

  async rebase(branchId: string, targetId: string, opts: { strategy?: Strategy }): Promise<Branch> {
    const b = this.branches.get(branchId);
    const onto = this.headOf(targetId);
    const snap = await this.merges.merge([onto, b.head], { strategy: opts.strategy, metadata: { 'faas.rebasedFrom': b.head }, owner: b.owner });
    this.repo.update(b.id, { head: snap.id, divergencePoint: onto, instanceId: null });
    return this.branches.get(b.id);
  }
}
