// Snapshots: immutable, bootable states. Made either from an image (boot once, wait for the agent,
// checkpoint) or from a running instance (checkpoint --leave-running). Every snapshot row is
// written in state `creating` before any file exists and flipped to `ready` only after its image
// is complete and checksummed, so the reconciler can roll back anything interrupted.
//
// Deleting and restoring agree through holds: every restore from a snapshot's files (an instance
// start, restart or finished start, a pooled clone, a checkpoint of one of its instances) holds
// the snapshot until it is done, and delete first hides the snapshot (no new hold can be taken:
// it is `snapshot_not_found` from then on), waits for the holds to go, then stops what came up
// and only then removes the files. So no instance ends up `ready` on files that are gone.
import { createHash } from 'node:crypto';
import { conflict, notFound } from '../core/errors.js';
import type { EventBus } from '../core/events.js';
import { newId } from '../core/ids.js';
import type { SandboxRuntime } from '../core/interfaces.js';
import { newAgentKey } from '../runtime/agent-client.js';
import { isUnrestricted, normalizeNetworkConfig, type NetworkConfigInput } from '../core/network-config.js';
import { nowIso, type Image, type Instance, type Metadata, type NetworkConfig, type Page, type Resources, type Snapshot } from '../core/types.js';
import { makeTemplate } from '../runtime/runsc/bundle.js';
import type { SnapshotCachePolicy } from '../store/images/image-cache.js';
import type { SnapshotFiles, SnapshotStorage } from '../store/snapshot-files.js';
import type { LineageRepo } from '../store/sqlite/lineage.js';
import type { InstanceRepo, SnapshotRepo } from '../store/sqlite/repos.js';
import type { ImageService } from './images.js';
import type { HostCapacity } from './limits.js';
import type { Sandboxes, Timings } from './sandboxes.js';

/** Bumped when a boot would make a different root from the same image, resources and template. */
const ROOT_RECIPE = 'faas-root/1';

export const DEFAULT_RESOURCES: Resources = { vcpus: 1, memory: 512, diskSize: 1024, maxProcesses: null, networkBandwidth: null };

export interface CreateSnapshotInput {
  imageId?: string;
  name?: string;
  vcpus?: number;
  memory?: number;
  diskSize?: number;
  maxProcesses?: number;
  networkConfig?: NetworkConfigInput;
  networkBandwidth?: number | null;
  environment?: Record<string, string>;
  metadata?: Metadata;
  /** The API key that makes it (set by the route, not the client). */
  owner?: string | null;
  /** CacheConfig / OptimizationHints given for it (docs/storage.md). */
  cachePolicy?: SnapshotCachePolicy;
}

/** What a checkpoint of a running instance takes from it. */
export type CheckpointSource = Pick<Instance, 'id' | 'snapshotId' | 'resources' | 'networkConfig'>;

/**
 * The parts of a root snapshot's config its digest covers. The network policy and bandwidth are
 * in it only when set, so digests of snapshots made before they existed stay the same.
 */
function recipeOf(resources: Resources, networkConfig: NetworkConfig): string[] {
  const { networkBandwidth, ...rest } = resources;
  const parts = [JSON.stringify(rest)];
  if (networkBandwidth !== null || !isUnrestricted(networkConfig) || networkConfig.egress.allow.length || !networkConfig.egress.dns) {
    parts.push(JSON.stringify({ networkBandwidth, networkConfig }));
  }
  return parts;
}

export class SnapshotService {
  constructor(
    private readonly repo: SnapshotRepo,
    private readonly instances: InstanceRepo,
    private readonly files: SnapshotFiles,
    private readonly images: ImageService,
    private readonly sandboxes: Sandboxes,
    private readonly runtime: SandboxRuntime,
    private readonly events: EventBus,
    private readonly agentDir: () => string,
    private readonly capacity: HostCapacity,
  ) {}

  get(id: string): Snapshot {
    const s = this.repo.get(id);
    if (!s || s.state !== 'ready' || this.deleting.has(id)) throw notFound('snapshot', id);
    return s;
  }

  /** The key the agent inside the snapshot's image holds: what a restore presents before re-keying. */
  agentKeyOf(id: string): string | null {
    return this.repo.agentKey(id);
  }

  /** Any state; undefined when there is none (the ownership guard). */
  find(id: string): Snapshot | undefined {
    return this.repo.get(id);
  }

  /**
   * The snapshot, held against deletion until `release` is called (once the restore or
   * checkpoint that reads its files is over, whatever its outcome).
   */
  hold(id: string): { snap: Snapshot; release: () => void } {
    const snap = this.get(id);
    this.holds.set(id, (this.holds.get(id) ?? 0) + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const n = (this.holds.get(id) ?? 1) - 1;
      if (n > 0) return void this.holds.set(id, n);
      this.holds.delete(id);
      const waiters = this.drainWaiters.get(id) ?? [];
      this.drainWaiters.delete(id);
      for (const w of waiters) w();
    };
    return { snap, release };
  }

  private drained(id: string): Promise<void> {
    if (!this.holds.get(id)) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.set(id, [...(this.drainWaiters.get(id) ?? []), resolve]));
  }

  /** The snapshot's AutoScaling maxInstances (null: no cap). */
  maxInstancesOf(id: string): number | null {
    return this.repo.poolMax(id);
  }

  list(q: Parameters<SnapshotRepo['list']>[0]): Page<Snapshot> {
    return this.repo.list(q);
  }

  setMetadata(id: string, metadata: Metadata): Snapshot {
    this.get(id);
    this.repo.setMetadata(id, metadata);
    return this.get(id);
  }

  /**
   * What a root made from `input` is, without making it. Its digest is the content address the
   * root cache keys on (docs/step-cache.md): the image's digest, the resources, and the boot
   * template, which holds the environment and the content-addressed agent path (agents/<sha>);
   * ROOT_RECIPE versions whatever else of a boot would make a different root. Name and metadata
   * are not content.
   */
  rootRecipe(input: CreateSnapshotInput): {
    image: Image; resources: Resources; networkConfig: NetworkConfig; environment: Record<string, string>; spec: string; digest: string;
  } {
    const image: Image = input.imageId ? this.images.get(input.imageId) : this.images.default();
    const resources: Resources = {
      vcpus: input.vcpus ?? DEFAULT_RESOURCES.vcpus,
      memory: input.memory ?? DEFAULT_RESOURCES.memory,
      diskSize: input.diskSize ?? DEFAULT_RESOURCES.diskSize,
      maxProcesses: input.maxProcesses ?? DEFAULT_RESOURCES.maxProcesses,
      networkBandwidth: input.networkBandwidth ?? DEFAULT_RESOURCES.networkBandwidth,
    };
    const networkConfig = normalizeNetworkConfig(input.networkConfig);
    const environment = input.environment ?? {};
    const spec = makeTemplate({ rootfs: image.rootfs, agentDir: this.agentDir(), environment });
    return { image, resources, networkConfig, environment, spec, digest: digestOf([ROOT_RECIPE, image.digest, spec, ...recipeOf(resources, networkConfig)]) };
  }

  async createFromImage(input: CreateSnapshotInput): Promise<Snapshot> {
    const recipe = this.rootRecipe(input);
    const { image, environment, spec, networkConfig } = recipe;
    const resources = this.capacity.check(recipe.resources);
    const owner = input.owner ?? null;
    this.assertNameFree(input.name, owner);
    const snap = this.newRecord({
      parentId: null, imageId: image.id, instanceId: null, name: input.name ?? null, resources, networkConfig, environment,
      metadata: input.metadata ?? {}, spec, owner, digest: recipe.digest,
    });
    const sandboxId = `boot-${snap.id}`;
    let slot: { netns: string; ip: string } | null = null;
    // The booted agent takes this key first; it is in the image, so every restore presents it.
    const key = newAgentKey();
    this.repo.setAgentKey(snap.id, key);
    this.setPolicy(snap.id, input.cachePolicy);
    try {
      this.files.assertRoom(snap.id, 0);
      slot = await this.sandboxes.boot(sandboxId, spec, resources, key);
      const changes = await this.captureChanges(slot.ip);
      await this.runtime.checkpoint(sandboxId, this.files.tempDirOf(snap.id), false);
      changes?.(this.files.tempDirOf(snap.id), snap.id, null);
      if (!changes) this.blobRefs?.markIndexed(snap.id);
      return this.commit(snap);
    } catch (err) {
      const e = this.files.explain(err); // before the rollback frees the partial image's space
      this.rollback(snap.id);
      throw e;
    } finally {
      await this.sandboxes.destroy(sandboxId, slot?.netns ?? null, slot?.ip ?? null).catch(() => undefined);
    }
  }

  /** Checkpoints a running sandbox; it keeps running. `digest` names how the state was made. */
  async checkpointInstance(
    inst: CheckpointSource,
    opts: { name?: string | null; metadata?: Metadata; digest?: string; timings?: Timings; owner?: string | null; cachePolicy?: SnapshotCachePolicy },
  ): Promise<Snapshot> {
    const { snap: parent, release } = this.hold(inst.snapshotId);
    try {
      return await this.checkpointFrom(parent, inst, opts);
    } finally {
      release();
    }
  }

  private async checkpointFrom(
    parent: Snapshot,
    inst: CheckpointSource,
    opts: { name?: string | null; metadata?: Metadata; digest?: string; timings?: Timings; owner?: string | null; cachePolicy?: SnapshotCachePolicy },
  ): Promise<Snapshot> {
    const owner = opts.owner ?? null;
    this.assertNameFree(opts.name, owner);
    const snap = this.newRecord({
      parentId: parent.id, imageId: parent.imageId, instanceId: inst.id, name: opts.name ?? null,
      // The instance's network policy and bandwidth (it may have been changed while it ran) go
      // into the checkpoint's record: instances started from it inherit them.
      resources: { ...parent.resources, networkBandwidth: inst.resources.networkBandwidth }, networkConfig: inst.networkConfig,
      environment: parent.environment, metadata: opts.metadata ?? {}, spec: parent.spec, owner,
      digest: opts.digest ?? digestOf([parent.digest, 'checkpoint', inst.id, newId('op')]),
    });
    // History: the new checkpoint follows the instance's head (services/state.ts).
    this.lineage?.setPrevious(snap.id, this.lineage.headOf(inst.id) ?? parent.id);
    // The image's agent holds the instance's key (the caller holds the instance's lock, so no
    // identity call changes it meanwhile).
    const key = this.instances.agentKey(inst.id);
    if (key) this.repo.setAgentKey(snap.id, key);
    this.setPolicy(snap.id, opts.cachePolicy);
    const tc = performance.now();
    try {
      // Refused before anything is written when the disk cannot take an image like its parent's.
      this.files.assertRoom(snap.id, parent.size);
      // What the files look like at this checkpoint, relative to the image (store/changes.ts): the
      // agent stats the paths changed since boot and hashes only those changed since last asked.
      const row = this.instances.get(inst.id);
      const changes = row?.ip && row.state === 'ready' ? await this.captureChanges(row.ip) : null;
      const t0 = performance.now();
      await this.runtime.checkpoint(this.instances.sandboxOf(inst.id), this.files.tempDirOf(snap.id), true);
      changes?.(this.files.tempDirOf(snap.id), snap.id, inst.id);
      if (!changes) this.blobRefs?.markIndexed(snap.id);
      const t1 = performance.now();
      // Ready as soon as the image is whole and in place; its checksum is computed in the next
      // quiet moment (sealPending), off the branch's and the caller's path.
      const { size, dir } = await this.files.place(snap.id);
      this.repo.markReady(snap.id, '', size, dir);
      this.lineage?.setHead(inst.id, snap.id);
      const ready = this.get(snap.id);
      this.events.publish('snapshot.created', snap.id, { parentId: snap.parentId, instanceId: snap.instanceId, size });
      this.branches?.onCheckpoint(ready);
      this.unsealed.add(snap.id);
      this.whenQuiet();
      if (opts.timings) {
        opts.timings.changes = Math.round((t0 - tc) * 10) / 10;
        opts.timings.checkpoint = Math.round((t1 - t0) * 10) / 10;
        opts.timings.place = Math.round((performance.now() - t1) * 10) / 10;
      }
      return ready;
    } catch (err) {
      const e = this.files.explain(err); // before the rollback frees the partial image's space
      this.rollback(snap.id);
      throw e;
    }
  }

  /**
   * Checksums the images of checkpoints queued since the last run (and, at start-up, those a crash
   * left unchecksummed). Runs when the engine is quiet: on 2 cores a hash beside a fresh clone's
   * restore slowed the restore by what it saved. An image deleted meanwhile is skipped.
   */
  sealPending(): Promise<void> {
    // .finally runs after the assignment even when the loop has nothing to await.
    this.sealing ??= this.sealLoop().finally(() => {
      this.sealing = null;
    });
    return this.sealing;
  }

  private async sealLoop(): Promise<void> {
    for (let id = first(this.unsealed); id !== undefined; id = first(this.unsealed)) {
      this.unsealed.delete(id);
      const s = this.repo.get(id);
      if (!s || s.state !== 'ready') continue;
      try {
        if (s.checksum === '') {
          const checksum = await this.files.seal(id);
          if (!checksum || !this.repo.get(id)) continue;
          this.repo.setChecksum(id, checksum);
        }
        // Then into the deduplicated store (docs/storage.md): only once checksummed, so what is
        // stored is what was checked. Held meanwhile, so a delete waits for it to finish.
        if (!this.visible(id)) continue;
        const { release } = this.hold(id);
        try {
          await this.files.storeImage(id);
        } finally {
          release();
        }
      } catch (err) {
        // Left unchecksummed: restores of it are refused once its files differ from when placed.
        // Left unstored: its files stay whole (nothing evicts an image the store does not hold).
        this.onSealError(id, err as Error);
      }
    }
  }

  /** Disk use of the snapshot's image (docs/storage.md). */
  storageOf(id: string): SnapshotStorage {
    return this.files.storage(id);
  }

  /** Whether a restore, checkpoint or store reads the snapshot's files now (they must stay). */
  held(id: string): boolean {
    return (this.holds.get(id) ?? 0) > 0;
  }

  /** Queues snapshots for sealPending (at start-up: those a crash left unchecksummed or unstored). */
  queueSeal(ids: string[]): void {
    for (const id of ids) this.unsealed.add(id);
  }

  /** Ready and not being deleted: what the step cache may answer with; undefined otherwise. */
  visible(id: string): Snapshot | undefined {
    const s = this.repo.get(id);
    return s && s.state === 'ready' && !this.deleting.has(id) ? s : undefined;
  }

  /** Verifies a snapshot's image before a restore trusts it. */
  verify(s: Snapshot): Promise<void> {
    return this.files.verify(s.id, s.imageDir, s.checksum);
  }

  /**
   * Deletes a snapshot. With dependents (live instances, child snapshots, branches pointing at it) that is a conflict unless
   * `force`, which deletes the whole subtree: descendants first, each after stopping its live
   * instances (their records stay, stopped).
   */
  async delete(id: string, force: boolean): Promise<void> {
    const s = this.get(id);
    const dependents = () => ({ instances: this.instances.liveOfSnapshot(id), snapshots: this.repo.children(id), branches: this.branches?.refsTo(id) ?? [] });
    const refuse = (d: ReturnType<typeof dependents>) => {
      if (!force && (d.instances.length || d.snapshots.length || d.branches.length)) {
        throw conflict(`snapshot ${id} has dependents; stop them first or pass force=true`, d);
      }
    };
    refuse(dependents());
    // Hide the subtree from new starts, one level at a time, and let the restores in flight finish:
    // what they bring up is live, so it is found and stopped below, before its files go.
    const order = [s.id];
    try {
      for (let i = 0; i < order.length; i++) {
        this.deleting.add(order[i]);
        await this.drained(order[i]);
        if (i === 0) refuse(dependents()); // a restart finished meanwhile: without force, still a conflict
        order.push(...this.repo.children(order[i]));
      }
      for (const sid of [...order].reverse()) {
        for (const iid of this.instances.liveOfSnapshot(sid)) await this.stopInstance?.(iid);
        const owner = this.repo.get(sid)?.owner ?? null;
        this.lineage?.spliceOut(sid);
        this.repo.delete(sid);
        this.files.remove(sid);
        this.cachePolicies?.forget(sid);
        this.branches?.onSnapshotDeleted(sid);
        this.events.publish('snapshot.deleted', sid, { forced: force, root: s.id }, owner);
      }
    } finally {
      for (const sid of order) this.deleting.delete(sid);
      this.onDeleted();
    }
  }

  /**
   * Set by the composition root: asks the agent at `ip` for its change manifest and returns what
   * writes it into a checkpoint directory, or null when the agent keeps none (store/changes.ts).
   */
  captureChanges: (ip: string) => Promise<((dir: string, snapshotId: string, instanceId: string | null) => void) | null> = async () => null;
  /** Set by the composition root: which kept blobs each snapshot names (services/blob-gc.ts). */
  blobRefs: { copy(from: string, to: string): void; markIndexed(id: string): void; inherit(instanceId: string, snapshotId: string): void } | null = null;

  /** An instance was restored from a checkpoint other than its own snapshot (rollback, restart from its head). */
  restoredInto(instanceId: string, snapshotId: string): void {
    this.blobRefs?.inherit(instanceId, snapshotId);
  }
  /** Set by the composition root: asks for a blob collection in a quiet moment (after deletes). */
  onDeleted: () => void = () => undefined;
  /**
   * Set by the composition root: branches (services/branches.ts) point at snapshots. A checkpoint
   * of an instance moves the heads of the branches it is checked out on; a snapshot a branch points
   * at is a dependent; a forced delete moves or removes the branches that pointed at it.
   */
  branches: {
    onCheckpoint(snap: Snapshot): void;
    refsTo(id: string): string[];
    onSnapshotDeleted(id: string): void;
  } | null = null;

  /**
   * Engine-native clone: a new row sharing `id`'s image files (SnapshotFiles.link), nothing
   * restored. Same state, checksum, parent, instance, agent key and history as the original;
   * its own id, name, metadata (a copy unless given) and owner (the caller).
   */
  async clone(id: string, opts: { name?: string; metadata?: Metadata; owner?: string | null } = {}): Promise<Snapshot> {
    // Held, so a delete of the original waits until the links exist (then both have the files).
    const { snap: src, release } = this.hold(id);
    try {
      const owner = opts.owner === undefined ? src.owner : opts.owner;
      this.assertNameFree(opts.name, owner);
      const snap = this.newRecord({
        parentId: src.parentId, imageId: src.imageId, instanceId: src.instanceId, name: opts.name ?? null, resources: src.resources, networkConfig: src.networkConfig,
        environment: src.environment, metadata: opts.metadata ?? src.metadata, spec: src.spec, owner, digest: src.digest,
      });
      this.lineage?.setPrevious(snap.id, this.lineage.previousOf(src.id));
      const key = this.repo.agentKey(src.id);
      if (key) this.repo.setAgentKey(snap.id, key);
      this.setPolicy(snap.id, this.cachePolicies?.get(src.id));
      this.blobRefs?.copy(src.id, snap.id);
      try {
        const { dir } = await this.files.link(src.id, snap.id);
        // Read again: the original may have been sealed meanwhile.
        const checksum = this.repo.get(src.id)?.checksum ?? '';
        this.repo.markReady(snap.id, checksum, src.size, dir);
        if (checksum === '') {
          this.unsealed.add(snap.id);
          this.whenQuiet();
        }
      } catch (err) {
        this.rollback(snap.id);
        throw err;
      }
      this.events.publish('snapshot.created', snap.id, { parentId: snap.parentId, instanceId: snap.instanceId, size: src.size, clonedFrom: src.id });
      return this.get(snap.id);
    } finally {
      release();
    }
  }

  /** Set by the composition root: each snapshot's own cache policy (migration 15). */
  cachePolicies: { set(id: string, p: SnapshotCachePolicy): void; get(id: string): SnapshotCachePolicy | undefined; forget(id: string): void } | null = null;

  private setPolicy(id: string, p: SnapshotCachePolicy | undefined): void {
    if (p && (p.cacheConfig || p.optimizationHints)) this.cachePolicies?.set(id, p);
  }

  /** Set by the composition root: history records (services/state.ts). */
  lineage: LineageRepo | null = null;
  /** Set by the composition root (instances depend on snapshots, not the other way round). */
  stopInstance: ((id: string) => Promise<unknown>) | null = null;
  /** Set by the composition root: asks for a quiet moment, after which sealPending runs. */
  whenQuiet: () => void = () => setImmediate(() => void this.sealPending());
  onSealError: (id: string, err: Error) => void = () => undefined;
  private readonly unsealed = new Set<string>();
  /** Snapshots being deleted: invisible to get() and hold(). */
  private readonly deleting = new Set<string>();
  private readonly holds = new Map<string, number>();
  private readonly drainWaiters = new Map<string, (() => void)[]>();
  private sealing: Promise<void> | null = null;

  /** Names are unique among one key's snapshots, so they can be used to find one. */
  assertNameFree(name: string | null | undefined, owner: string | null): void {
    if (name && this.repo.byName(name, owner)) throw conflict(`a snapshot named ${name} already exists`, { name });
  }

  private newRecord(f: Omit<Snapshot, 'id' | 'state' | 'checksum' | 'size' | 'createdAt' | 'expiresAt' | 'imageDir'>): Snapshot {
    const id = newId('snap');
    const snap: Snapshot = { ...f, id, state: 'creating', checksum: '', size: 0, createdAt: nowIso(), expiresAt: null, imageDir: this.files.tempDirOf(id) };
    this.repo.insert(snap);
    return snap;
  }

  private async commit(snap: Snapshot): Promise<Snapshot> {
    const { checksum, size, dir } = await this.files.commit(snap.id);
    this.repo.markReady(snap.id, checksum, size, dir);
    const ready = this.get(snap.id);
    this.events.publish('snapshot.created', snap.id, { parentId: snap.parentId, instanceId: snap.instanceId, size });
    // Checksummed already; queued only to be stored deduplicated in a quiet moment.
    this.unsealed.add(snap.id);
    this.whenQuiet();
    return ready;
  }

  private rollback(id: string): void {
    this.files.remove(id);
    this.repo.delete(id);
  }
}

const first = (set: Set<string>): string | undefined => set.values().next().value;

export function digestOf(parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return `sha256:${h.digest('hex')}`;
}
