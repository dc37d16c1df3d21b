// Branches: named, owned pointers into the snapshot tree, in git's sense.
//
//   create(snapshot) ──▶ divergencePoint = head = snapshot, nothing running
//   checkout ──▶ the live instance checked out on the branch (restored from head when there is none)
//   commit / any checkpoint of that instance by the branch's owner ──▶ head = the new snapshot
//   live branch of that instance with names ──▶ one child branch per new instance, parentId = this
//
// A branch is only a record: deleting it leaves its snapshots and its instance alone. Snapshots
// stay the unit of storage, so the snapshot service tells this one when it checkpoints an
// instance (onCheckpoint moves heads) and asks it before it deletes (refsTo); a head deleted
// with force falls back to the newest snapshot the branch still has (onSnapshotDeleted).
// Checkout and commit of one branch are serialised (one lock per branch), so concurrent
// checkouts start at most one instance.
import type { SnapshotCachePolicy } from '../store/images/image-cache.js';
import { FaasError, invalid, notFound } from '../core/errors.js';
import type { EventBus } from '../core/events.js';
import { newId } from '../core/ids.js';
import type { NetworkConfigInput } from '../core/network-config.js';
import { nowIso, type Branch, type Instance, type Metadata, type Page, type Snapshot } from '../core/types.js';
import type { BranchRepo } from '../store/sqlite/branches.js';
import type { InstanceService } from './instances.js';
import { KeyedLock } from './keyed-lock.js';
import type { Timings } from './sandboxes.js';
import type { SnapshotService } from './snapshots.js';

/** How long a checkout waits for a checked-out instance that is still starting. */
const CHECKOUT_WAIT_MS = 60_000;

export const nameTaken = (name: string) =>
  new FaasError('branch_name_taken', `a branch named ${name} already exists; pick another name or delete that branch`, { name });

export class BranchService {
  private readonly lock = new KeyedLock();

  constructor(
    private readonly repo: BranchRepo,
    private readonly snapshots: SnapshotService,
    private readonly instances: InstanceService,
    private readonly events: EventBus,
  ) {}

  /** The branch as the API shows it: instanceId only while that instance is live. */
  get(id: string): Branch {
    const b = this.repo.get(id);
    if (!b) throw notFound('branch', id);
    return { ...b, instanceId: this.liveInstance(b)?.id ?? null };
  }

  /** Undefined when there is none (the ownership guard). */
  find(id: string): Branch | undefined {
    return this.repo.get(id);
  }

  list(q: Parameters<BranchRepo['list']>[0]): Page<Branch> {
    const page = this.repo.list(q);
    return { ...page, data: page.data.map((b) => ({ ...b, instanceId: this.liveInstance(b)?.id ?? null })) };
  }

  create(input: { snapshotId: string; name?: string; metadata?: Metadata; owner: string | null }): Branch {
    const snap = this.snapshots.get(input.snapshotId);
    if (input.name) this.assertNamesFree([input.name], input.owner);
    const parent = this.repo.oldestAtHead(snap.id, input.owner);
    const b = this.record({ name: input.name ?? '', parentId: parent?.id ?? null, at: snap.id, instanceId: null, metadata: input.metadata, owner: input.owner });
    // Unnamed: the id is the name (unique by construction, and a name is always there to show).
    if (!b.name) b.name = b.id;
    this.insert([b]);
    return this.get(b.id);
  }

  /**
   * Deletes the record (git branch -D): snapshots and the checked-out instance stay. Child
   * branches keep their snapshots and move to this branch's parent, with force only.
   */
  async delete(id: string, force: boolean): Promise<void> {
    await this.lock.run(id, async () => {
      const b = this.get(id);
      const children = this.repo.children(id);
      if (children.length && !force) {
        throw new FaasError('branch_has_children', `branch ${id} has ${children.length} child branch(es); delete them first or pass force=true (they move to this branch's parent)`, { id, children });
      }
      this.remove(b);
    });
  }

  /** The branch's live instance, started from its head when it has none. */
  async checkout(id: string): Promise<{ instance: Instance; started: boolean }> {
    return this.lock.run(id, async () => {
      const b = this.get(id);
      const live = this.liveInstance(b);
      if (live?.state === 'paused') return { instance: await this.instances.resume(live.id), started: false };
      if (live?.state === 'pending') return { instance: await this.instances.waitFor(live.id, 'ready', CHECKOUT_WAIT_MS), started: false };
      if (live) return { instance: live, started: false };
      // Owned by the branch's owner (an admin checking out another key's branch starts it for them).
      const instance = await this.instances.start({ snapshotId: b.head, owner: b.owner });
      this.repo.update(id, { instanceId: instance.id });
      return { instance, started: true };
    });
  }

  /** Checkpoints the checked-out instance; onCheckpoint moves the head. */
  async commit(id: string, opts: { message?: string; metadata?: Metadata }): Promise<Snapshot> {
    return this.lock.run(id, async () => {
      const b = this.get(id);
      const live = this.liveInstance(b);
      if (!live || live.state === 'pending') {
        throw new FaasError('branch_not_checked_out', `branch ${id} has no live checked-out instance; call checkout first`, { id, instanceId: b.instanceId });
      }
      const metadata = { ...opts.metadata, ...(opts.message ? { message: opts.message } : {}) };
      return this.instances.snapshot(live.id, { metadata, owner: b.owner });
    });
  }

  /**
   * instances.branch with names: the live branch, then one Branch record per child, all or none.
   * Names are checked before anything starts; a name taken meanwhile undoes the branch.
   */
  async branchInstance(
    instanceId: string,
    count: number,
    opts: { names: string[]; wait?: boolean; metadata?: Metadata; owner: string | null; networkConfig?: NetworkConfigInput; networkBandwidth?: number | null; cachePolicy?: SnapshotCachePolicy },
    timings?: Timings,
  ): Promise<{ snapshot: Snapshot; instances: Instance[]; branches: Branch[] }> {
    if (opts.names.length !== count) {
      throw invalid(`names must have one name per new instance (count is ${count}, ${opts.names.length} names given)`, { field: '/names', count });
    }
    if (new Set(opts.names).size !== opts.names.length) throw invalid('names must be different from each other', { field: '/names' });
    const owner = opts.owner ?? this.instances.get(instanceId).owner;
    this.assertNamesFree(opts.names, owner);
    const out = await this.instances.branch(instanceId, count, { ...opts, owner }, timings);
    const parent = this.repo.ofInstance(instanceId).find((b) => b.owner === owner) ?? null;
    const records = out.instances.map((inst, i) =>
      this.record({ name: opts.names[i], parentId: parent?.id ?? null, at: out.snapshot.id, instanceId: inst.id, metadata: opts.metadata, owner }),
    );
    try {
      this.insert(records);
    } catch (err) {
      await Promise.all(out.instances.map((i) => this.instances.delete(i.id).catch(() => undefined)));
      await this.snapshots.delete(out.snapshot.id, true).catch(() => undefined);
      throw err;
    }
    return { ...out, branches: records.map((r) => this.get(r.id)) };
  }

  // ---- hooks called by the snapshot service (wired in engine.ts)

  /** A checkpoint of an instance by the owner of the branches it is checked out on moves their heads. */
  onCheckpoint(snap: Snapshot): void {
    if (!snap.instanceId) return;
    for (const b of this.repo.ofInstance(snap.instanceId)) {
      if (b.owner === snap.owner) this.repo.update(b.id, { head: snap.id });
    }
  }

  /** Branch ids that point at a snapshot (its delete is a conflict without force). */
  refsTo(snapshotId: string): string[] {
    return this.repo.onSnapshot(snapshotId).map((b) => b.id);
  }

  /**
   * A snapshot was force-deleted. A branch that started there goes (nothing of it is left); a
   * branch whose head it was falls back to its newest earlier head still there (its reflog).
   */
  onSnapshotDeleted(snapshotId: string): void {
    for (const b of this.repo.onSnapshot(snapshotId)) {
      const head = b.divergencePoint === snapshotId ? undefined : this.repo.previousHead(b.id, snapshotId);
      if (head) this.repo.update(b.id, { head });
      else this.remove(b);
    }
  }

  // ----

  /** The record goes, its children move to its parent; the event lets waiters (an expired snapshot it held) retry. */
  private remove(b: Branch): void {
    this.repo.delete(b.id, b.parentId);
    this.events.publish('branch.deleted', b.id, { parentId: b.parentId, head: b.head }, b.owner);
  }

  private liveInstance(b: Branch): Instance | undefined {
    const inst = b.instanceId ? this.instances.find(b.instanceId) : undefined;
    return inst && (inst.state === 'ready' || inst.state === 'paused' || inst.state === 'pending') ? inst : undefined;
  }

  private assertNamesFree(names: string[], owner: string | null): void {
    for (const name of names) if (this.repo.byName(name, owner)) throw nameTaken(name);
  }

  private record(f: { name: string; parentId: string | null; at: string; instanceId: string | null; metadata?: Metadata; owner: string | null }): Branch {
    return {
      id: newId('br'), name: f.name, parentId: f.parentId, divergencePoint: f.at, head: f.at, instanceId: f.instanceId,
      metadata: f.metadata ?? {}, createdAt: nowIso(), owner: f.owner,
    };
  }

  /** The unique index is the last word on names (two creates racing past assertNamesFree). */
  private insert(records: Branch[]): void {
    try {
      this.repo.insert(records);
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        const taken = records.find((r) => this.repo.byName(r.name, r.owner));
        throw nameTaken(taken?.name ?? records[0].name);
      }
      throw err;
    }
  }
}
