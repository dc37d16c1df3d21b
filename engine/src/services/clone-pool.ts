// Paused clones of chosen snapshots, restored ahead of time (the SDK spec's AutoScaling
// minInstances). Starting an instance of such a snapshot takes a clone and resumes it instead of
// restoring: the restore already happened in the background. Clones are sandboxes without an
// instance record until taken, so an engine restart destroys them (orphans) and refills the pool
// from the stored minInstances.
import type { NetworkPolicyService } from './network-policy.js';
import type { EventBus } from '../core/events.js';
import { newId } from '../core/ids.js';
import type { NetworkSlot, SandboxRuntime } from '../core/interfaces.js';
import { FaasError } from '../core/errors.js';
import { newAgentKey } from '../runtime/agent-client.js';
import type { InstanceRepo, SnapshotRepo } from '../store/sqlite/repos.js';
import type { Logger } from './logger.js';
import type { Sandboxes } from './sandboxes.js';
import type { SnapshotService } from './snapshots.js';
import type { WarmPool } from './warm-pool.js';

export interface Clone {
  id: string;
  slot: NetworkSlot;
  /** The clone's own key, given when it was restored (never its snapshot's, shared by all). */
  agentKey: string;
}

export class ClonePool {
  private readonly ready = new Map<string, Clone[]>();
  private filling: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly d: {
      repo: SnapshotRepo;
      instances: InstanceRepo;
      snapshots: SnapshotService;
      sandboxes: Sandboxes;
      runtime: SandboxRuntime;
      warm: WarmPool;
      events: EventBus;
      log: Logger;
    },
  ) {
    d.events.on('event', (e) => {
      if (e.type === 'snapshot.deleted') void this.drain(e.resourceId);
    });
    d.warm.on('idle', () => this.refill());
  }

  /** Set by the composition root (network-policy.ts). */
  networkPolicy: Pick<NetworkPolicyService, 'apply'> | null = null;

  get(snapshotId: string) {
    const s = this.d.snapshots.get(snapshotId);
    return {
      snapshotId: s.id,
      minInstances: this.d.repo.poolMin(s.id),
      maxInstances: this.d.repo.poolMax(s.id),
      ready: this.ready.get(s.id)?.length ?? 0,
      live: this.d.instances.countRunningOfSnapshot(s.id),
    };
  }

  /** Replaces the snapshot's AutoScaling: paused clones kept ready, and the cap on live instances. */
  async set(snapshotId: string, minInstances: number, maxInstances: number | null = null) {
    const s = this.d.snapshots.get(snapshotId);
    if (maxInstances !== null && maxInstances < minInstances) {
      throw new FaasError('invalid_request', `maxInstances (${maxInstances}) must be at least minInstances (${minInstances})`, {
        field: '/maxInstances',
        minInstances,
        maxInstances,
      });
    }
    this.d.repo.setPool(s.id, minInstances, maxInstances);
    const list = this.ready.get(s.id) ?? [];
    const excess = list.splice(minInstances);
    await Promise.all(excess.map((c) => this.discard(c)));
    this.refill();
    return this.get(s.id);
  }

  /** A paused clone of this snapshot, if one is ready. The caller resumes it. */
  take(snapshotId: string): Clone | undefined {
    const clone = this.ready.get(snapshotId)?.shift();
    // Refilled once the engine is quiet (the warm pool's `idle`), not beside this start's resume.
    if (clone) this.d.warm.nudge();
    return clone;
  }

  /** Starts filling after an engine start (once the reconciler has cleared old sandboxes). */
  start(): void {
    this.refill();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.filling;
    const all = [...this.ready.values()].flatMap((l) => l.splice(0));
    await Promise.all(all.map((c) => this.discard(c)));
  }

  private async drain(snapshotId: string): Promise<void> {
    const list = this.ready.get(snapshotId) ?? [];
    this.ready.delete(snapshotId);
    await Promise.all(list.map((c) => this.discard(c)));
  }

  private refill(): void {
    if (this.filling || this.closed) return;
    this.filling = (async () => {
      for (;;) {
        if (this.closed || !this.d.warm.idle()) return;
        const want = this.d.repo.pooled().find(({ id, min }) => (this.ready.get(id)?.length ?? 0) < min);
        if (!want) return;
        try {
          // Held while its files are read, so a delete waits for this restore (snapshots.ts).
          const { snap, release } = this.d.snapshots.hold(want.id);
          const id = newId('inst');
          const agentKey = newAgentKey();
          let slot: NetworkSlot;
          try {
            await this.d.snapshots.verify(snap);
            // The snapshot's egress rules and bandwidth hold from the restore on (the start that
            // takes the clone applies the instance's own before resuming it).
            const prepare = (netns: string) => this.networkPolicy?.apply(netns, { id, networkConfig: snap.networkConfig, resources: snap.resources }) ?? Promise.resolve();
            slot = await this.d.sandboxes.restore(id, snap.spec, snap.imageDir, snap.resources, { current: this.d.snapshots.agentKeyOf(snap.id), next: agentKey }, undefined, undefined, prepare);
          } finally {
            release();
          }
          await this.d.runtime.pause(id);
          if (this.closed || this.d.repo.poolMin(want.id) === 0) {
            await this.discard({ id, slot, agentKey });
            continue;
          }
          const list = this.ready.get(want.id) ?? [];
          list.push({ id, slot, agentKey });
          this.ready.set(want.id, list);
        } catch (err) {
          this.d.log.warn({ snapshotId: want.id, err: String(err) }, 'clone pool: refill failed; will retry when restores are idle');
          return;
        }
      }
    })().finally(() => {
      this.filling = null;
    });
  }

  private discard(c: Clone): Promise<void> {
    return this.d.sandboxes.destroy(c.id, c.slot.netns, c.slot.ip).catch(() => undefined);
  }
}
