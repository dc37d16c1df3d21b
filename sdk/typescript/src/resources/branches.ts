// Branches, as faas has them (the same module as the Python SDK's `branches`).
//
// The seed describes a BranchManager (create/list/merge/rebase/diff/checkout). The engine has no
// branch resource: a branch in faas is a running instance that diverged from a snapshot — made by
// starting an instance of a snapshot, or by live-branching a running instance (which snapshots it
// and starts N copies). This module offers those, plus listing, on the instance routes.
// merge, rebase and diff have no engine support and are deliberately not imitated client-side.
import type { FaaSClient } from '../client.js';
import type { RequestOptions } from '../core/http.js';
import { idOf, type IdRef } from '../core/ids.js';
import type { AutoPager } from '../core/pagination.js';
import type { BranchResult, Instance, InstanceData, StartInstanceConfig } from './instances.js';
import { seg } from '../core/ids.js';
import type { BranchData, BranchDiff, DiffOptions, MergeOptions, RebaseOptions } from './diff.js';
import { Snapshot } from './snapshots.js';

export class BranchManager {
  constructor(private readonly client: FaaSClient) {}

  /** A new running branch of `snapshot`; without one, of a fresh root snapshot of the default image. */
  async create(snapshot?: IdRef, config: Omit<StartInstanceConfig, 'snapshotId'> = {}, options?: RequestOptions): Promise<Instance> {
    const snapshotId = snapshot === undefined ? (await this.client.snapshots.create({}, options)).id : idOf(snapshot);
    return this.client.instances.start({ ...config, snapshotId }, options);
  }

  /** The seed's name for starting a branch from an existing snapshot. */
  checkout(snapshot: IdRef, options?: RequestOptions): Promise<Instance> {
    return this.create(snapshot, {}, options);
  }

  /** Live-branches a running instance: memory, processes and files are copied into each child. */
  fork(instance: IdRef, count = 1, metadata?: Record<string, string>, options?: RequestOptions): Promise<BranchResult> {
    return this.client.instances.branch(instance, { count, ...(metadata ? { metadata } : {}) }, options);
  }

  /** Instances started from a snapshot (`snap_…`), or branched from an instance (`inst_…`). */
  list(parent: IdRef): AutoPager<Instance, InstanceData> {
    const id = idOf(parent);
    return id.startsWith('snap_') ? this.client.instances.list({ snapshotId: id }) : this.client.instances.list({ parentId: id });
  }

  /** What changed in the files from the branch's head to `target` (a branch's head, or a snapshot). */
  diff(branch: IdRef, target: IdRef, options: DiffOptions = {}, requestOptions?: RequestOptions): Promise<BranchDiff> {
    return this.client.http.request({ ...requestOptions, method: 'GET', path: `/v1/branches/${seg(idOf(branch))}/diff/${seg(idOf(target))}`, query: { textDiffs: options.textDiffs } });
  }

  /**
   * Merges the branches' heads onto the first branch's head (its memory and processes) and moves
   * that head to the result. Overlapping changes throw MergeConflictError unless `strategy` resolves them.
   */
  async merge(branches: IdRef[], options: MergeOptions = {}, requestOptions?: RequestOptions): Promise<Snapshot> {
    const { strategy, message, metadata } = options;
    const data = await this.client.http.request({ ...requestOptions, method: 'POST', path: '/v1/branches/merge', json: { branchIds: branches.map(idOf), strategy, message, metadata } });
    return new Snapshot(this.client, data as ConstructorParameters<typeof Snapshot>[1]);
  }

  /** Replays the branch's changes onto `target`'s head (a branch or a snapshot); moves its head and divergencePoint. */
  rebase(branch: IdRef, target: IdRef, options: RebaseOptions = {}, requestOptions?: RequestOptions): Promise<BranchData> {
    return this.client.http.request({ ...requestOptions, method: 'POST', path: `/v1/branches/${seg(idOf(branch))}/rebase`, json: { targetId: idOf(target), strategy: options.strategy } });
  }
}
