// Instances: live sandboxes restored from snapshots. Every start is a restore (never a boot), and a
// branch is a checkpoint of the running parent followed by parallel restores of that image.
// Records are written before the sandbox exists (state `pending`) so that an engine killed in the
// middle leaves something the reconciler can finish or roll back.
// Admission (limits.ts) is checked in the same turn as the record is inserted; every restore holds
// its snapshot (snapshots.ts) so a delete cannot remove the files under it.
import { FaasError, notFound, waitExpired } from '../core/errors.js';
import type { EventBus } from '../core/events.js';
import { newId } from '../core/ids.js';
import { assertCan, isLive } from '../core/instance-states.js';
import { normalizeNetworkConfig, type NetworkConfigInput } from '../core/network-config.js';
import type { SandboxRuntime } from '../core/interfaces.js';
import { nowIso, type Instance, type InstanceState, type Metadata, type Page, type Resources, type Snapshot } from '../core/types.js';
import { newAgentKey, type AgentClient } from '../runtime/agent-client.js';
import type { Cgroups } from '../runtime/cgroups.js';
import { diskUsedBytes, networkBytes } from '../runtime/usage.js';
import type { InstanceRepo } from '../store/sqlite/repos.js';
import { KeyedLock } from './keyed-lock.js';
import type { SnapshotCachePolicy } from '../store/images/image-cache.js';
import type { Sandboxes, Timings } from './sandboxes.js';
import type { WarmSandbox } from './warm-pool.js';
import type { Clone } from './clone-pool.js';
import type { NetworkPolicyService } from './network-policy.js';
import type { Admission, HostCapacity, Reservation } from './limits.js';
import type { SnapshotService } from './snapshots.js';
import { retired } from './sandbox-swap.js';

export interface StartInput {
  snapshotId: string;
  metadata?: Metadata;
  ttl?: number | null;
  ttlAction?: 'stop' | 'pause';
  autoStop?: boolean;
  resources?: Partial<Resources>;
  /** Omitted: the snapshot's (a branch passes the parent's). */
  networkConfig?: NetworkConfigInput;
  parentInstanceId?: string | null;
  /** The API key that starts it (set by the route, not the client). */
  owner?: string | null;
  /** What resumes it when paused (services/wake.ts); kept by the onCreated hook. */
  wakeOn?: { http?: boolean; ssh?: boolean };
}

export class InstanceService {
  readonly lock = new KeyedLock();
  /** Set by the composition root: the snapshot a pending instance is restored from (its head, services/state.ts). */
  sourceOf: ((inst: Instance) => string | null) | null = null;
  /** Set by the composition root: paused clones to resume instead of restoring. */
  clones: { take(snapshotId: string): Clone | undefined } | null = null;
  /** Set by the composition root: installs instances' egress rules and bandwidth on their slots. */
  networkPolicy: Pick<NetworkPolicyService, 'apply'> | null = null;
  /** Set by the composition root: told of every new record in the turn it is inserted (wakeOn,
   *  a branch child's copies of its parent's HTTP services). */
  onCreated: (inst: Instance, input: StartInput) => void = () => {};
  /** Set by the composition root (sandbox-swap.ts; null when rollback standbys are off): restores a
   *  live instance in place by swapping the sandbox behind it, keeping its address and namespace. */
  /** Set by the composition root: told of each checkpoint of a live instance (a rollback standby is made for it). */
  onCheckpoint: (instanceId: string, template: string) => void = () => {};
  swap: ((inst: Instance, snap: Snapshot, opts: { restoring?: (snapshotId: string) => void; timings?: Timings }) => Promise<void>) | null = null;

  constructor(
    private readonly repo: InstanceRepo,
    private readonly snapshots: SnapshotService,
    private readonly sandboxes: Sandboxes,
    private readonly runtime: SandboxRuntime,
    readonly agents: AgentClient,
    private readonly cgroups: Cgroups,
    private readonly events: EventBus,
    private readonly limits: { admission: Admission; capacity: HostCapacity },
  ) {}

  /** Lifetime (seconds) of an instance started through the API without `ttl` (FAAS_INSTANCE_TTL). */
  defaultTtl: number | null = null;

  get(id: string): Instance {
    const i = this.repo.get(id);
    if (!i) throw notFound('instance', id);
    return i;
  }

  /** The runsc id of the sandbox behind a live instance (its own id unless a rollback swapped one in). */
  sandboxOf(id: string): string {
    return this.repo.sandboxOf(id);
  }

  /** Undefined when there is none (the ownership guard). */
  find(id: string): Instance | undefined {
    return this.repo.get(id);
  }

  list(q: Parameters<InstanceRepo['list']>[0]): Page<Instance> {
    return this.repo.list(q);
  }

  setMetadata(id: string, metadata: Metadata): Instance {
    this.get(id);
    this.repo.update(id, { metadata });
    return this.get(id);
  }

  /**
   * Replaces the instance's network policy and/or bandwidth; a ready or paused instance gets the new
   * rules at once, a stopped one at its next restart.
   */
  async setNetwork(id: string, change: { networkConfig?: NetworkConfigInput; networkBandwidth?: number | null }): Promise<Instance> {
    const networkConfig = change.networkConfig ? normalizeNetworkConfig(change.networkConfig) : undefined;
    return this.lock.run(id, async () => {
      const inst = this.get(id);
      const next = {
        networkConfig: networkConfig ?? inst.networkConfig,
        resources: change.networkBandwidth === undefined ? inst.resources : { ...inst.resources, networkBandwidth: change.networkBandwidth },
      };
      if (inst.netns && (inst.state === 'ready' || inst.state === 'paused')) await this.networkPolicy?.apply(inst.netns, { ...inst, ...next });
      this.repo.setNetwork(id, next);
      return this.get(id);
    });
  }

  /**
   * Creates the record and restores the sandbox. With wait=false the restore finishes in the background.
   * @param reservation a branch's child: its slot was reserved before the parent's checkpoint
   */
  async start(input: StartInput, wait = true, timings?: Timings, reservation?: Reservation): Promise<Instance> {
    const { snap, release } = this.snapshots.hold(input.snapshotId);
    let work: Promise<void> | undefined;
    let inst: Instance;
    try {
      // Before a pooled clone or warm sandbox is taken, so a refused start wastes none; the record
      // is inserted in this same turn of the event loop (no await before newRecord), so concurrent
      // starts cannot both pass.
      const resources = this.resourcesFor(snap, input);
      input = { ...input, networkConfig: input.networkConfig ? normalizeNetworkConfig(input.networkConfig) : snap.networkConfig };
      this.ensureUnderCap(snap.id);
      if (!reservation) this.limits.admission.check(1, resources.memory);
      const clone = input.parentInstanceId ? undefined : this.clones?.take(snap.id);
      if (clone) return await this.startFromClone(snap, input, resources, clone, timings);
      const warm = this.sandboxes.takeWarm(snap.spec);
      try {
        inst = this.newRecord(snap, input, resources, warm?.id);
      } catch (err) {
        if (warm) await this.sandboxes.destroy(warm.id, warm.slot.netns, warm.slot.ip).catch(() => undefined);
        throw err;
      }
      reservation?.take();
      work = this.lock.run(inst.id, () => this.bringUp(inst, snap, timings, warm));
    } finally {
      // Held until the restore is over; a start refused before it began lets go at once.
      if (work) void work.catch(() => undefined).finally(release);
      else release();
    }
    if (!wait) {
      work.catch(() => undefined); // recorded on the instance as state `error`
      return inst;
    }
    await work;
    return this.get(inst.id);
  }

  async stop(id: string): Promise<Instance> {
    return this.lock.run(id, async () => {
      const inst = this.get(id);
      assertCan(inst, 'stop');
      if (inst.state === 'stopped') return inst;
      await this.takeDown(inst, 'stopped');
      return this.get(id);
    });
  }

  async delete(id: string): Promise<void> {
    await this.lock.run(id, async () => {
      const inst = this.get(id);
      if (inst.state !== 'stopped') await this.takeDown(inst, 'stopped');
      this.repo.delete(id);
      this.events.publish('instance.deleted', id, {}, inst.owner);
    });
  }

  async pause(id: string): Promise<Instance> {
    return this.lock.run(id, async () => {
      assertCan(this.get(id), 'pause');
      await this.runtime.pause(this.sandboxOf(id));
      this.setState(id, 'paused', 'instance.paused');
      return this.get(id);
    });
  }

  async resume(id: string): Promise<Instance> {
    return this.lock.run(id, async () => {
      assertCan(this.get(id), 'resume');
      await this.runtime.resume(this.sandboxOf(id));
      this.setState(id, 'ready', 'instance.resumed');
      return this.get(id);
    });
  }

  /**
   * Stops the sandbox and restores it again under the same id: from the instance's snapshot, or
   * from the one `from` picks (rollback, services/state.ts). `from` and `restoring` run under the
   * instance's lock, so no checkpoint of it can come in between. `restoring` records what is about
   * to be restored in the same turn as the record becomes `pending`, so an engine killed during
   * the restore finishes it from that snapshot (finishPending asks `sourceOf`).
   */
  async restart(id: string, opts: { from?: (inst: Instance) => string; restoring?: (snapshotId: string) => void; timings?: Timings } = {}): Promise<Instance> {
    return this.lock.run(id, async () => {
      const inst = this.get(id);
      assertCan(inst, 'restart');
      const { snap, release } = this.snapshots.hold(opts.from ? opts.from(inst) : inst.snapshotId);
      try {
        if (this.swap && inst.netns && inst.ip && (inst.state === 'ready' || inst.state === 'paused')) {
          await this.swap(inst, snap, opts);
          return this.get(id);
        }
        const t0 = performance.now();
        if (inst.state !== 'stopped') await this.takeDown(inst, 'stopped', true);
        if (opts.timings) opts.timings.takeDown = Math.round((performance.now() - t0) * 10) / 10;
        // Live again: admitted like a start, in the same turn as it becomes pending.
        this.limits.admission.check(1, inst.resources.memory);
        opts.restoring?.(snap.id);
        this.repo.update(id, { state: 'pending', error: null, stoppedAt: null, readyAt: null });
        this.events.publish('instance.pending', id);
        await this.bringUp(this.get(id), snap, opts.timings);
      } finally {
        release();
      }
      return this.get(id);
    });
  }

  /** Resolves when the instance reaches `state`; rejects if it reaches a state it cannot leave for it. */
  waitFor(id: string, state: InstanceState, timeoutMs: number): Promise<Instance> {
    const current = this.get(id);
    if (current.state === state) return Promise.resolve(current);
    return new Promise((resolve, reject) => {
      const channel = `resource:${id}`;
      const done = (fn: () => void) => {
        clearTimeout(timer);
        this.events.off(channel, check);
        fn();
      };
      const check = () => {
        const now = this.repo.get(id);
        if (!now) return done(() => reject(notFound('instance', id)));
        if (now.state === state) return done(() => resolve(now));
        const terminal = now.state === 'stopped' || now.state === 'error';
        if (terminal && state !== 'stopped' && state !== 'error') {
          done(() => reject(new FaasError('instance_not_ready', `instance ${id} is ${now.state}${now.error ? `: ${now.error}` : ''}`, { id, state: now.state })));
        }
      };
      const timer = setTimeout(
        () => done(() => reject(waitExpired(`instance ${id} did not become ${state} within ${timeoutMs} ms`, { id, state: this.repo.get(id)?.state }))),
        timeoutMs,
      );
      this.events.on(channel, check);
      check();
    });
  }

  async metrics(id: string) {
    const inst = this.get(id);
    assertCan(inst, 'metrics');
    const sandboxId = this.sandboxOf(id);
    const m = this.cgroups.metrics(sandboxId);
    const [processes, diskUsed] = await Promise.all([
      this.runtime.processCount(sandboxId).catch(() => 0),
      // A paused sandbox cannot answer; its disk figure is 0 until it is resumed.
      inst.state === 'ready' ? diskUsedBytes(this.agents, inst.ip) : Promise.resolve(0),
    ]);
    return {
      instanceId: id,
      timestamp: nowIso(),
      cpu: { usageSeconds: m.cpuSeconds, vcpus: inst.resources.vcpus },
      memory: { usageBytes: m.memoryBytes, limitBytes: m.memoryLimit, peakBytes: m.memoryPeak },
      processes: { count: processes },
      disk: { usedBytes: diskUsed },
      network: networkBytes(inst.netns),
    };
  }

  async snapshot(id: string, opts: { name?: string; metadata?: Metadata; owner?: string | null; cachePolicy?: SnapshotCachePolicy } = {}, timings?: Timings): Promise<Snapshot> {
    return this.lock.run(id, async () => {
      const inst = this.get(id);
      assertCan(inst, 'snapshot');
      // The snapshot belongs to the caller that took it (by default the instance's owner).
      const snap = await this.snapshots.checkpointInstance(inst, { ...opts, owner: opts.owner === undefined ? inst.owner : opts.owner, timings });
      this.onCheckpoint(inst.id, snap.spec);
      return snap;
    });
  }

  /** Live branch: checkpoint the running parent once, restore `count` children from that image. */
  async branch(
    id: string,
    count: number,
    opts: { wait?: boolean; metadata?: Metadata; owner?: string | null; networkConfig?: NetworkConfigInput; networkBandwidth?: number | null; cachePolicy?: SnapshotCachePolicy } = {},
    timings?: Timings,
  ): Promise<{ snapshot: Snapshot; instances: Instance[] }> {
    const parent = this.get(id);
    assertCan(parent, 'branch');
    // Children inherit the parent's network policy and bandwidth unless the request sets them
    // (validated before the checkpoint, so a bad one costs nothing).
    const networkConfig = opts.networkConfig ? normalizeNetworkConfig(opts.networkConfig) : parent.networkConfig;
    const resources = opts.networkBandwidth === undefined ? parent.resources : { ...parent.resources, networkBandwidth: opts.networkBandwidth };
    // The children's slots and memory are held from now, across the checkpoint, so branches and
    // starts running beside this one cannot take them meanwhile.
    const reservation = this.limits.admission.reserve(count, parent.resources.memory);
    // The branch point and the children belong to the caller (an admin branching another key's
    // instance owns what it made).
    const owner = opts.owner ?? parent.owner;
    let snapshot: Snapshot;
    let children: PromiseSettledResult<Instance>[];
    const t0 = performance.now();
    try {
      snapshot = await this.snapshot(id, { metadata: opts.metadata, owner, cachePolicy: opts.cachePolicy }, timings);
      // The checkpoint side's wall time (lock, records, capture, checkpoint, place): restoreAll
      // minus this is the children's side, whose own laps are the first child's (docs/benchmarks.md).
      if (timings) timings.snapshotAll = Math.round((performance.now() - t0) * 10) / 10;
      const startChild = (i: number) =>
        this.start(
          { snapshotId: snapshot.id, parentInstanceId: id, metadata: { ...parent.metadata, ...opts.metadata }, resources, networkConfig, owner },
          opts.wait !== false,
          i === 0 ? timings : undefined,
          reservation,
        );
      // optimizationHints.parallelExecution: false restores the children one after another
      // (each gets the whole machine; the last is ready later) — docs/storage.md.
      children = opts.cachePolicy?.optimizationHints?.parallelExecution === false
        ? await sequentially(count, startChild)
        : await Promise.allSettled(Array.from({ length: count }, (_, i) => startChild(i)));
    } finally {
      reservation.release();
    }
    if (timings) timings.restoreAll = Math.round((performance.now() - t0) * 10) / 10;
    const failed = children.find((c): c is PromiseRejectedResult => c.status === 'rejected');
    const instances = children.flatMap((c) => (c.status === 'fulfilled' ? [c.value] : []));
    this.events.publish('branch.created', snapshot.id, { parentInstanceId: id, instances: instances.map((i) => i.id), failed: count - instances.length });
    if (failed) {
      // All or nothing: a caller asked for N live copies; remove the ones that did come up and the
      // branch point nobody was told about (the 30-minute soak found failed branches' checkpoints
      // piling up). Children that failed to start keep their `error` rows as the record of why.
      await Promise.all(instances.map((i) => this.delete(i.id).catch(() => undefined)));
      await this.snapshots.delete(snapshot.id, true).catch(() => undefined);
      throw failed.reason;
    }
    return { snapshot, instances };
  }

  /** Resumes a paused clone restored ahead of time: the start costs a resume, not a restore. */
  private async startFromClone(snap: Snapshot, input: StartInput, resources: Resources, clone: Clone, timings: Timings = {}): Promise<Instance> {
    let inst: Instance;
    try {
      inst = this.newRecord(snap, input, resources, clone.id);
      // The clone was re-keyed with a key of its own when it was restored (clone-pool.ts).
      this.repo.setAgentKey(inst.id, clone.agentKey);
    } catch (err) {
      await this.sandboxes.destroy(clone.id, clone.slot.netns, clone.slot.ip).catch(() => undefined);
      throw err;
    }
    await this.lock.run(inst.id, async () => {
      try {
        const t0 = performance.now();
        await this.networkPolicy?.apply(clone.slot.netns, inst);
        await this.runtime.resume(inst.id);
        this.cgroups.apply(inst.id, inst.resources);
        if (inst.resources.maxProcesses !== snap.resources.maxProcesses) {
          await this.agents.identify(clone.slot.ip, inst.id, 5_000, inst.resources.maxProcesses, { current: clone.agentKey, next: clone.agentKey });
        }
        timings.resume = Math.round((performance.now() - t0) * 10) / 10;
        this.repo.update(inst.id, { state: 'ready', ip: clone.slot.ip, netns: clone.slot.netns, readyAt: nowIso() });
        this.events.publish('instance.ready', inst.id, { ip: clone.slot.ip, pooled: true });
      } catch (err) {
        await this.sandboxes.destroy(inst.id, clone.slot.netns, clone.slot.ip).catch(() => undefined);
        this.repo.update(inst.id, { state: 'error', error: (err as Error).message });
        this.events.publish('instance.error', inst.id, { reason: (err as Error).message });
        throw err;
      }
    });
    return this.get(inst.id);
  }

  /** Completes a start the engine was killed in the middle of (called by the reconciler). */
  async finishPending(id: string): Promise<void> {
    await this.lock.run(id, async () => {
      const inst = this.get(id);
      if (inst.state !== 'pending') return;
      let held: ReturnType<SnapshotService['hold']>;
      try {
        held = this.snapshots.hold(this.sourceOf?.(inst) ?? inst.snapshotId);
      } catch (err) {
        this.repo.update(id, { state: 'error', error: `cannot finish the start: ${(err as Error).message}` });
        throw err;
      }
      try {
        await this.bringUp(inst, held.snap);
      } finally {
        held.release();
      }
    });
  }

  /** Marks live instances whose sandbox has gone as `error`. Called by the watcher. */
  markDead(id: string, reason: string): void {
    const inst = this.repo.get(id);
    if (!inst || !isLive(inst.state) || inst.state === 'pending' || inst.state === 'stopping') return;
    this.repo.update(id, { state: 'error', error: reason, netns: null });
    this.events.publish('instance.error', id, { reason });
    // The sandbox is gone: free what it held (runsc's record, its namespace, its bundle) now,
    // since an instance in `error` is no longer live and nothing else would.
    const sandboxId = this.sandboxOf(id);
    void this.lock.run(id, () => this.sandboxes.destroy(sandboxId, inst.netns, inst.ip)).catch(() => undefined);
  }

  /** The snapshot's AutoScaling maxInstances, if it has one. */
  private ensureUnderCap(snapshotId: string): void {
    const max = this.snapshots.maxInstancesOf(snapshotId);
    if (max === null) return;
    const running = this.repo.countRunningOfSnapshot(snapshotId);
    if (running >= max) {
      throw new FaasError(
        'resource_limit',
        `snapshot ${snapshotId} allows at most ${max} live instances (its pool's maxInstances); stop one or raise the cap`,
        { snapshotId, live: running, maxInstances: max },
        { status: 429, retryAfterSeconds: 1 },
      );
    }
  }

  private resourcesFor(snap: Snapshot, input: StartInput): Resources {
    // The writable layer's size travels in the checkpoint (runsc.ts boot): it cannot differ.
    if (input.resources?.diskSize !== undefined && input.resources.diskSize !== snap.resources.diskSize) {
      throw new FaasError('invalid_request', `diskSize is fixed by the snapshot (${snap.resources.diskSize} MB)`, { field: '/resources/diskSize', snapshot: snap.resources.diskSize });
    }
    return this.limits.capacity.check({ ...snap.resources, ...input.resources });
  }

  private newRecord(snap: Snapshot, input: StartInput, resources: Resources, id = newId('inst')): Instance {
    const inst: Instance = {
      id,
      snapshotId: snap.id,
      parentInstanceId: input.parentInstanceId ?? null,
      state: 'pending',
      error: null,
      resources,
      ip: null,
      netns: null,
      networkConfig: normalizeNetworkConfig(input.networkConfig ?? snap.networkConfig),
      metadata: input.metadata ?? {},
      ttl: input.ttl ?? null,
      ttlAction: input.ttlAction ?? 'stop',
      autoStop: input.autoStop ?? false,
      createdAt: nowIso(),
      readyAt: null,
      stoppedAt: null,
      owner: input.owner ?? null,
    };
    this.repo.insert(inst);
    this.onCreated(inst, input);
    this.events.publish('instance.pending', inst.id, { snapshotId: snap.id });
    return inst;
  }

  private async bringUp(inst: Instance, snap: Snapshot, timings: Timings = {}, warm?: WarmSandbox): Promise<void> {
    try {
      const t0 = performance.now();
      await this.snapshots.verify(snap);
      timings.verify = Math.round((performance.now() - t0) * 10) / 10;
      // The restored agent holds the snapshot's key, shared by every restore of that image: the
      // readiness call replaces it with this instance's own, recorded first so that a crash
      // in between leaves the key the agent may already hold.
      const key = newAgentKey();
      this.repo.setAgentKey(inst.id, key);
      this.repo.setSandbox(inst.id, null); // a cold restore's sandbox has the instance's id
      await retired(inst.id); // a swapped-out sandbox of that id may still be being deleted
      // The policy is on the slot before the sandbox runs in it (prepare runs before the restore).
      const prepare = (netns: string) => this.networkPolicy?.apply(netns, inst) ?? Promise.resolve();
      const slot = await this.sandboxes.restore(inst.id, snap.spec, snap.imageDir, inst.resources, { current: this.snapshots.agentKeyOf(snap.id), next: key }, timings, warm, prepare);
      const t1 = performance.now();
      this.repo.update(inst.id, { state: 'ready', ip: slot.ip, netns: slot.netns, readyAt: nowIso() });
      this.events.publish('instance.ready', inst.id, { ip: slot.ip });
      timings.record = Math.round((performance.now() - t1) * 10) / 10;
    } catch (err) {
      const reason = (err as Error).message;
      this.repo.update(inst.id, { state: 'error', error: reason });
      this.events.publish('instance.error', inst.id, { reason });
      throw err;
    }
  }

  private async takeDown(inst: Instance, final: 'stopped', networkLater = false): Promise<void> {
    this.repo.update(inst.id, { state: 'stopping' });
    await this.sandboxes.destroy(this.sandboxOf(inst.id), inst.netns, inst.ip, networkLater);
    this.repo.update(inst.id, { state: final, stoppedAt: nowIso(), netns: null });
    this.events.publish('instance.stopped', inst.id);
  }

  private setState(id: string, state: InstanceState, event: Parameters<EventBus['publish']>[0]): void {
    this.repo.update(id, { state });
    this.events.publish(event, id);
  }
}

async function sequentially<T>(count: number, run: (i: number) => Promise<T>): Promise<PromiseSettledResult<T>[]> {
  const out: PromiseSettledResult<T>[] = [];
  for (let i = 0; i < count; i++) {
    try {
      out.push({ status: 'fulfilled', value: await run(i) });
    } catch (reason) {
      out.push({ status: 'rejected', reason });
    }
  }
  return out;
}
