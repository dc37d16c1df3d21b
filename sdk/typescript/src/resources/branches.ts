// client.branches and the Branch resource (the same module as the Python SDK's `branches`).
//
// A Branch is a named line of snapshots, as in git: `head` is its newest snapshot and moves with
// every commit (and every snapshot the branch's owner takes of its checked-out instance);
// `divergencePoint` is where it left its parent; `checkout` gives the branch's live instance at its
// head (restored when it has none). Deleting a branch keeps its snapshots and its instance.
// Live forking of a running instance stays `instances.branch` (`fork` here), which can name the
// branches it makes.
import type * as api from '../generated/api.gen.js';
import type { FaaSClient } from '../client.js';
import type { RequestOptions } from '../core/http.js';
import { idOf, seg, type IdRef } from '../core/ids.js';
import { AutoPager } from '../core/pagination.js';
import { Instance, type BranchResult } from './instances.js';
import { Snapshot } from './snapshots.js';
import type { BranchDiff, DiffOptions, MergeOptions, RebaseOptions } from './diff.js';

export type BranchData = api.Branch;

export interface CreateBranchConfig {
  /** Unique among the key's branches; the branch's id when omitted. */
  name?: string;
  metadata?: Record<string, string>;
}

export interface BranchListFilter {
  /** Only direct children of this branch. */
  parentId?: string;
  name?: string;
  metadata?: Record<string, string>;
  /** Page size used while iterating (1..200). */
  pageSize?: number;
}

export interface DeleteBranchOptions {
  /** Delete even with child branches (they move to this branch's parent). */
  force?: boolean;
}

export interface CommitOptions {
  /** Kept in the new snapshot's metadata as `message`. */
  message?: string;
  metadata?: Record<string, string>;
}

export interface ForkOptions {
  /** One name per new instance: each gets a Branch record (`BranchResult.branches`). */
  names?: string[];
  metadata?: Record<string, string>;
}

export class Branch implements BranchData {
  declare readonly id: string;
  declare readonly name: string;
  declare readonly parentId: string | null;
  declare readonly divergencePoint: string;
  declare readonly head: string;
  declare readonly instanceId: string | null;
  declare readonly metadata: Record<string, string>;
  declare readonly createdAt: string;
  readonly #client: FaaSClient;

  constructor(client: FaaSClient, data: BranchData) {
    this.#client = client;
    Object.assign(this, data);
  }

  async refresh(options?: RequestOptions): Promise<this> {
    return Object.assign(this, await this.#client.http.request<BranchData>({ ...options, method: 'GET', path: `/v1/branches/${seg(this.id)}` }));
  }

  /** The branch's live instance at its head (started when there is none). */
  checkout(options?: RequestOptions): Promise<Instance> {
    return this.#client.branches.checkout(this.id, options);
  }

  /** Checkpoints the checked-out instance; the head moves to the new snapshot. */
  commit(messageOrOptions?: string | CommitOptions, options?: RequestOptions): Promise<Snapshot> {
    return this.#client.branches.commit(this.id, messageOrOptions, options);
  }

  delete(opts: DeleteBranchOptions = {}, options?: RequestOptions): Promise<void> {
    return this.#client.branches.delete(this.id, opts, options);
  }

  /** What changed in the files from this branch's head to `target` (a branch's head, or a snapshot). */
  diff(target: IdRef, opts?: DiffOptions, options?: RequestOptions): Promise<BranchDiff> {
    return this.#client.branches.diff(this.id, target, opts, options);
  }

  /** Replays this branch's changes onto `target`'s head; answers the moved branch. */
  rebase(target: IdRef, opts?: RebaseOptions, options?: RequestOptions): Promise<Branch> {
    return this.#client.branches.rebase(this.id, target, opts, options);
  }
}

export class BranchManager {
  constructor(protected readonly client: FaaSClient) {}

  protected wrap = (data: BranchData): Branch => new Branch(this.client, data);

  /** A branch at `snapshot` (its divergence point and head); nothing is started. */
  async create(snapshot: IdRef, config: CreateBranchConfig = {}, options?: RequestOptions): Promise<Branch> {
    return this.wrap(await this.client.http.request({ ...options, method: 'POST', path: '/v1/branches', json: { snapshotId: idOf(snapshot), ...config } }));
  }

  async get(id: IdRef, options?: RequestOptions): Promise<Branch> {
    return this.wrap(await this.client.http.request({ ...options, method: 'GET', path: `/v1/branches/${seg(id)}` }));
  }

  /** Branches, newest first; `list(parentId)` (the seed's form) lists a branch's children. */
  list(filter: IdRef | BranchListFilter = {}, options?: RequestOptions): AutoPager<Branch, BranchData> {
    const f: BranchListFilter = typeof filter === 'string' || 'id' in filter ? { parentId: idOf(filter as IdRef) } : filter;
    const { pageSize, ...query } = f;
    return new AutoPager(
      (cursor) => this.client.http.request({ ...options, method: 'GET', path: '/v1/branches', query: { ...query, limit: pageSize, cursor } }),
      this.wrap,
    );
  }

  /** Deletes the record only: its snapshots and its checked-out instance stay. */
  async delete(id: IdRef, opts: DeleteBranchOptions = {}, options?: RequestOptions): Promise<void> {
    await this.client.http.request({ ...options, method: 'DELETE', path: `/v1/branches/${seg(id)}`, query: { force: opts.force } });
  }

  /** The branch's live instance at its head: the checked-out one if live, else restored from the head. */
  async checkout(id: IdRef, options?: RequestOptions): Promise<Instance> {
    return new Instance(this.client, await this.client.http.request({ ...options, method: 'POST', path: `/v1/branches/${seg(id)}/checkout` }));
  }

  /** Checkpoints the branch's checked-out instance into a new snapshot and moves the head to it. */
  async commit(id: IdRef, messageOrOptions?: string | CommitOptions, options?: RequestOptions): Promise<Snapshot> {
    const body: CommitOptions = typeof messageOrOptions === 'string' ? { message: messageOrOptions } : (messageOrOptions ?? {});
    return new Snapshot(this.client, await this.client.http.request({ ...options, method: 'POST', path: `/v1/branches/${seg(id)}/commit`, json: body }));
  }

  /** Live-branches a running instance (= instances.branch); with `names`, each child gets a Branch. */
  fork(instance: IdRef, count = 1, opts: ForkOptions = {}, options?: RequestOptions): Promise<BranchResult> {
    return this.client.instances.branch(instance, { count, ...opts }, options);
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
    return new Snapshot(this.client, await this.client.http.request({ ...requestOptions, method: 'POST', path: '/v1/branches/merge', json: { branchIds: branches.map(idOf), strategy, message, metadata } }));
  }

  /** Replays the branch's changes onto `target`'s head (a branch or a snapshot); moves its head and divergencePoint. */
  async rebase(branch: IdRef, target: IdRef, options: RebaseOptions = {}, requestOptions?: RequestOptions): Promise<Branch> {
    return this.wrap(await this.client.http.request({ ...requestOptions, method: 'POST', path: `/v1/branches/${seg(idOf(branch))}/rebase`, json: { targetId: idOf(target), strategy: options.strategy } }));
  }
}
